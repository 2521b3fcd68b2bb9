using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using GpuAttention.Model;

namespace GpuAttention.Cli;

/// <summary><c>embed --model DIR "text" …</c>: sentence embeddings of the texts, or with <c>--similarity</c> their cosine matrix.</summary>
internal static class EmbedCommand
{
    public static Command Create(DeviceOptions deviceOptions)
    {
        var model = new Option<DirectoryInfo>("--model")
        {
            Description = "A BERT sentence-transformers folder: config.json, model.safetensors, vocab.txt (1_Pooling/config.json optional)",
            Required = true,
        };
        var similarity = new Option<bool>("--similarity") { Description = "Print the cosine similarity of every pair of texts instead of the vectors" };
        var texts = new Argument<string[]>("texts") { Description = "The texts to embed", Arity = ArgumentArity.OneOrMore };
        texts.Validators.Add(r =>
        {
            foreach (string text in r.GetValueOrDefault<string[]>() ?? [])
            {
                if (text.StartsWith("--", StringComparison.Ordinal))
                    r.AddError($"Unknown option '{text}'.");
            }
        });
        var dtype = DTypeOption.Create();
        var command = new Command("embed", "Sentence embeddings of texts with a BERT-family model") { model, similarity, dtype, texts };
        command.SetAction(result =>
        {
            string directory = result.GetValue(model)!.FullName;
            if (!Directory.Exists(directory))
                throw new UsageException($"--model: no directory '{directory}'.");
            var inputs = result.GetValue(texts)!;
            using var device = deviceOptions.Open(result);
            using var embedder = SentenceEmbedder.Load(device, directory, DTypeOption.Parse(result.GetValue(dtype)));
            var clock = Stopwatch.StartNew();
            var vectors = embedder.Embed(inputs);
            clock.Stop();
            Console.WriteLine($"device: {device}{(result.GetValue(dtype) is "f32" ? "" : $", {result.GetValue(dtype)}")}");
            if (result.GetValue(similarity))
            {
                Console.WriteLine("cosine similarity:");
                for (int i = 0; i < inputs.Length; i++)
                    Console.WriteLine(string.Join("  ", vectors.Select(v => Dot(vectors[i], v).ToString("F4", CultureInfo.InvariantCulture)))
                        + $"  {inputs[i]}");
            }
            else
            {
                for (int i = 0; i < inputs.Length; i++)
                    Console.WriteLine($"{inputs[i]}\n  [{string.Join(", ", vectors[i].Take(8).Select(x => x.ToString("F5", CultureInfo.InvariantCulture)))}, … ({vectors[i].Length} values)]");
            }
            Console.WriteLine($"{inputs.Length} text(s) in {clock.Elapsed.TotalMilliseconds:F1} ms");
            return 0;
        });
        return command;
    }

    private static double Dot(float[] a, float[] b) => a.Zip(b).Sum(p => (double)p.First * p.Second);
}
