using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using GpuAttention.Model;

namespace GpuAttention.Cli;

/// <summary><c>generate --model DIR "input"</c>: encodes the input and decodes greedily or with beams.</summary>
internal static class GenerateCommand
{
    public static Command Create(Option<string?> deviceOption)
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Directory with config.json, model.safetensors and vocab.json", Required = true };
        var beam = new Option<int>("--beam") { Description = "Beam width (1 = greedy)", DefaultValueFactory = _ => 1 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens to generate", DefaultValueFactory = _ => 32 };
        var noCache = new Option<bool>("--no-cache") { Description = "Re-run the decoder over the whole prefix each step (greedy only)" };
        var input = new Argument<string>("input") { Description = "Source text: whitespace-separated tokens, or one token per character" };
        var command = new Command("generate", "Run a seq2seq model on one input") { model, beam, maxTokens, noCache, input, deviceOption };
        command.SetAction(result =>
        {
            string directory = result.GetValue(model)!.FullName;
            var vocabulary = Vocabulary.Load(Path.Combine(directory, "vocab.json"));
            var source = vocabulary.Encode(result.GetValue(input)!);
            int width = result.GetValue(beam), limit = result.GetValue(maxTokens);

            using var device = DeviceChoice.Open(result.GetValue(deviceOption));
            using var transformer = Transformer.Load(device, directory);
            Generation.Greedy(transformer, [source], [source.Length], 1);

            var clock = Stopwatch.StartNew();
            int[] output = width == 1
                ? Generation.Greedy(transformer, [source], [source.Length], limit, useCache: !result.GetValue(noCache))[0]
                : Generation.Beam(transformer, source, width, limit);
            clock.Stop();
            Console.WriteLine($"device: {device}");
            Console.WriteLine($"input:  {vocabulary.Decode(source)}");
            Console.WriteLine($"output: {vocabulary.Decode(output.Where(t => t != transformer.Config.EosId))}");
            Console.WriteLine($"{output.Length} tokens in {clock.Elapsed.TotalMilliseconds:F0} ms " +
                $"({clock.Elapsed.TotalMilliseconds / output.Length:F1} ms/token, {output.Length / clock.Elapsed.TotalSeconds:F1} tokens/s, " +
                $"{(width == 1 ? "greedy" : $"beam {width}")}{(result.GetValue(noCache) ? ", no cache" : ", key/value cache")})");
            return 0;
        });
        return command;
    }

    /// <summary>The <c>vocab.json</c> beside a model: <c>{"tokens": [...]}</c>, a token's id being its index.</summary>
    private sealed class Vocabulary(string[] tokens)
    {
        public static Vocabulary Load(string path)
        {
            if (!File.Exists(path))
                throw new FileNotFoundException($"No vocabulary at '{path}'.", path);
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            return new Vocabulary(document.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray());
        }

        public int[] Encode(string text)
        {
            var pieces = text.Contains(' ') ? text.Split(' ', StringSplitOptions.RemoveEmptyEntries) : text.Select(c => c.ToString()).ToArray();
            return pieces.Select(p =>
            {
                int id = Array.IndexOf(tokens, p);
                return id >= 0 ? id : throw new ArgumentException($"Token '{p}' is not in the vocabulary ({string.Join(" ", tokens)}).", "input");
            }).ToArray();
        }

        public string Decode(IEnumerable<int> ids) => string.Join(" ", ids.Select(i => tokens[i]));
    }
}
