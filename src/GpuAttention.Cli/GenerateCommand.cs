using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using GpuAttention.Model;
using GpuAttention.Runtime;

namespace GpuAttention.Cli;

/// <summary><c>generate --model DIR "input"</c>: encodes the input and decodes greedily or with beams.</summary>
internal static class GenerateCommand
{
    public static Command Create(DeviceOptions deviceOptions)
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Directory with config.json, model.safetensors and vocab.json", Required = true };
        var beam = new Option<int>("--beam") { Description = $"Beam width (1 = greedy; at most {MaxBeam})", DefaultValueFactory = _ => 1 };
        beam.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > MaxBeam)
                r.AddError($"--beam must be in 1..{MaxBeam}, got {r.GetValueOrDefault<int>()}.");
        });
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens to generate (below the model's max_len)", DefaultValueFactory = _ => 32 };
        maxTokens.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1)
                r.AddError($"--max-tokens must be at least 1, got {r.GetValueOrDefault<int>()}.");
        });
        var noCache = new Option<bool>("--no-cache") { Description = "Re-run the decoder over the whole prefix each step (greedy only)" };
        var dtype = DTypeOption.Create();
        var input = new Argument<string>("input") { Description = "Source text: whitespace-separated tokens, or one token per character" };
        // An unknown option would otherwise be taken as the input text.
        input.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string>() is { } text && text.StartsWith("--", StringComparison.Ordinal))
                r.AddError($"Unknown option '{text}'.");
        });
        var command = new Command("generate", "Run a seq2seq model on one input") { model, beam, maxTokens, noCache, dtype, input };
        command.SetAction(result =>
        {
            string directory = result.GetValue(model)!.FullName;
            if (!Directory.Exists(directory))
                throw new UsageException($"--model: no directory '{directory}'.");
            var vocabulary = Vocabulary.Load(Path.Combine(directory, "vocab.json"));
            var source = vocabulary.Encode(result.GetValue(input)!);
            int width = result.GetValue(beam), limit = result.GetValue(maxTokens);

            using var device = deviceOptions.Open(result);
            using var transformer = Transformer.Load(device, directory, DTypeOption.Parse(result.GetValue(dtype)));
            if (limit >= transformer.Config.MaxLength)
                throw new UsageException($"--max-tokens must be below the model's max_len {transformer.Config.MaxLength}, got {limit}.");
            if (source.Length > transformer.Config.MaxLength)
                throw new UsageException($"The input has {source.Length} tokens, more than the model's max_len {transformer.Config.MaxLength}.");
            Generation.Greedy(transformer, [source], [source.Length], 1);

            var clock = Stopwatch.StartNew();
            int[] output = width == 1
                ? Generation.Greedy(transformer, [source], [source.Length], limit, useCache: !result.GetValue(noCache))[0]
                : Generation.Beam(transformer, source, width, limit);
            clock.Stop();
            Console.WriteLine($"device: {device}{(result.GetValue(dtype) is "f32" ? "" : $", {result.GetValue(dtype)}")}");
            Console.WriteLine($"input:  {vocabulary.Decode(source)}");
            Console.WriteLine($"output: {vocabulary.Decode(output.Where(t => t != transformer.Config.EosId))}");
            Console.WriteLine($"{output.Length} tokens in {clock.Elapsed.TotalMilliseconds:F0} ms " +
                $"({clock.Elapsed.TotalMilliseconds / output.Length:F1} ms/token, {output.Length / clock.Elapsed.TotalSeconds:F1} tokens/s, " +
                $"{(width == 1 ? "greedy" : $"beam {width}")}{(result.GetValue(noCache) ? ", no cache" : ", key/value cache")})");
            return 0;
        });
        return command;
    }

    /// <summary>The beams run as one batch; beyond this the command says so rather than the library.</summary>
    private const int MaxBeam = 256;

    /// <summary>The <c>vocab.json</c> beside a model: <c>{"tokens": [...]}</c>, a token's id being its index.</summary>
    private sealed class Vocabulary(string[] tokens)
    {
        public static Vocabulary Load(string path)
        {
            if (!File.Exists(path))
                throw new FileNotFoundException($"No vocabulary at '{path}'.", path);
            try
            {
                using var document = JsonDocument.Parse(File.ReadAllText(path));
                var list = document.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()
                    ?? throw new InvalidDataException("a token is not a string")).ToArray();
                return list.Length > 0 ? new Vocabulary(list) : throw new InvalidDataException("it lists no tokens");
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or InvalidDataException)
            {
                throw new InvalidDataException($"The vocabulary '{path}' is not {{\"tokens\": [\"…\", …]}}: {e.Message}", e);
            }
        }

        public int[] Encode(string text)
        {
            var pieces = text.Contains(' ') ? text.Split(' ', StringSplitOptions.RemoveEmptyEntries) : text.Select(c => c.ToString()).ToArray();
            if (pieces.Length == 0)
                throw new UsageException("The input is empty: give at least one token.");
            return pieces.Select(p =>
            {
                int id = Array.IndexOf(tokens, p);
                return id >= 0 ? id : throw new UsageException($"Token '{p}' is not in the model's vocabulary: {string.Join(" ", tokens)}.");
            }).ToArray();
        }

        public string Decode(IEnumerable<int> ids) => string.Join(" ", ids.Select(i => tokens[i]));
    }
}
