return GpuAttention.Cli.CommandLine.Run(args, Console.Error);
