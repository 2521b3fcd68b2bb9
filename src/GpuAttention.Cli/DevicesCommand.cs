using System.CommandLine;
using GpuAttention.Runtime;
using Spectre.Console;

namespace GpuAttention.Cli;

/// <summary><c>devices</c>: what ILGPU sees and which device would be used.</summary>
internal static class DevicesCommand
{
    public static Command Create(DeviceOptions deviceOptions)
    {
        var command = new Command("devices", "List the accelerators ILGPU sees and the one that would be used");
        command.SetAction(result =>
        {
            var table = new Table().AddColumns("kind", "hardware", "name", "memory", "max group", "warp");
            foreach (var d in ComputeDevice.ListDevices())
                table.AddRow(ComputeDevice.KindName(d.Kind), d.IsCpuHardware ? "CPU" : "GPU", Markup.Escape(d.Name),
                    d.Kind == DeviceKind.CpuAccelerator ? "host" : $"{d.MemoryBytes / (1024.0 * 1024 * 1024):F1} GiB",
                    d.MaxGroupSize.ToString(), d.WarpSize.ToString());
            AnsiConsole.Write(table);
            using var chosen = deviceOptions.Open(result);
            AnsiConsole.MarkupLine($"Using [bold]{Markup.Escape(chosen.ToString())}[/]" +
                (chosen.Profile is { } profile ? $" with launch profile {Markup.Escape(profile.ToString())}" : ""));
            return 0;
        });
        return command;
    }
}
