using System.CommandLine;

namespace GpuAttention.Cli;

/// <summary>A mistake in how the command was called (an option's value, the input text): exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// How the program ends when something is wrong: one line on stderr saying what and what to do, exit code 2 for a usage
/// mistake (the command line, its values, the environment's device choice) and 1 for a failure (a broken model file, a
/// device that is not present); the full exception only with <c>--verbose</c>.
/// </summary>
internal static class Failures
{
    public const int Usage = 2, Failure = 1;

    public static int Run(ParseResult parse, Option<bool> verbose, TextWriter error)
    {
        if (parse.Errors.Count > 0)
        {
            var command = parse.CommandResult.Command;
            string help = command is RootCommand ? "gpuattention --help" : $"gpuattention {command.Name} --help";
            error.WriteLine($"gpuattention: {string.Join(" ", parse.Errors.Select(e => e.Message.TrimEnd('.') + "."))} (see '{help}')");
            return Usage;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            if (parse.GetValue(verbose))
                error.WriteLine(e);
            else
                error.WriteLine($"gpuattention: {e.Message}");
            return e is UsageException ? Usage : Failure;
        }
    }
}
