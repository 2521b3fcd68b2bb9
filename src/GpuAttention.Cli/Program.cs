// Output sent to a file or pipe has no window width, and Spectre.Console would wrap its tables at 80 columns.
if (Console.IsOutputRedirected)
    Spectre.Console.AnsiConsole.Profile.Width = 200;
return GpuAttention.Cli.CommandLine.Run(args, Console.Error);
