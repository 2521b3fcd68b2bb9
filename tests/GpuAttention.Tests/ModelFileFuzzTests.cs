using System.Buffers.Binary;
using System.Text;
using GpuAttention.Model;
using GpuAttention.Runtime;
using GpuAttention.Weights;
using Xunit.Sdk;

namespace GpuAttention.Tests;

/// <summary>
/// A seeded, bounded fuzz of the two files a model loads from: a few thousand mutations of a fixture's safetensors
/// structure (its length prefix, its header, the file's end) and of its config.json. Every outcome must be a load that
/// gives the unmutated model's logits, a load of a config that is valid but different (the format cannot tell), or an
/// <see cref="InvalidDataException"/> naming the file — never another exception, and never more memory allocated while
/// reading than a small multiple of the file. The seed and the case are in every failure message.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class ModelFileFuzzTests(ITestOutputHelper output) : IDisposable
{
    private const int Seed = 20261129, Cases = 2500;
    private static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "fixtures", "postln_gelu_3layers");
    private readonly string folder = Directory.CreateTempSubdirectory("model-fuzz").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    private static ComputeDevice Device => TestDevices.Get("cpu");

    [Fact]
    public void MutatedFilesLoadTheSameModelOrFailWithInvalidDataNamingTheFile()
    {
        byte[] weights = File.ReadAllBytes(Path.Combine(Fixture, "model.safetensors"));
        string config = File.ReadAllText(Path.Combine(Fixture, "config.json"));
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(weights);
        float[] reference = Logits(Fixture);
        var originalConfig = TransformerConfig.Load(Path.Combine(Fixture, "config.json"));
        var random = new Random(Seed);
        var outcomes = new SortedDictionary<string, int>();
        long before = Device.BytesAllocated;

        for (int i = 0; i < Cases; i++)
        {
            bool mutateWeights = random.Next(3) != 0;
            string what;
            byte[] mutatedWeights = weights;
            string mutatedConfig = config;
            if (mutateWeights)
                mutatedWeights = MutateWeights(weights, headerEnd, random, out what);
            else
                mutatedConfig = MutateConfig(config, random, out what);
            File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), mutatedWeights);
            File.WriteAllText(Path.Combine(folder, "config.json"), mutatedConfig);
            string label = $"seed {Seed}, case {i} ({what})";
            string outcome;
            try
            {
                long allocated = GC.GetAllocatedBytesForCurrentThread();
                SafeTensors.Read(Path.Combine(folder, "model.safetensors"));
                allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
                if (allocated > 4L * mutatedWeights.Length + (1 << 20))
                    throw new XunitException($"{label}: reading a {mutatedWeights.Length}-byte file allocated {allocated} bytes.");
                bool sameConfig = TransformerConfig.Load(Path.Combine(folder, "config.json")) == originalConfig;
                float[] logits;
                try
                {
                    logits = Logits(folder);
                }
                catch (ArgumentException) when (!sameConfig)
                {
                    logits = [];  // a valid config whose limits (max_len, vocabulary) the probe input exceeds
                }
                if (logits.AsSpan().SequenceEqual(reference))
                    outcome = mutateWeights ? "weights: loaded, same model" : "config: loaded, same model";
                else if (!sameConfig)
                    outcome = "config: loaded a valid, different config";
                else
                    throw new XunitException($"{label}: the mutated files loaded a different model without an error.");
            }
            catch (InvalidDataException e)
            {
                // A mutated config may also leave the weights unmatched: then the weights file is the one named.
                string[] files = mutateWeights ? ["model.safetensors"] : ["config.json", "model.safetensors"];
                if (!files.Any(file => e.Message.Contains(Path.Combine(folder, file))))
                    throw new XunitException($"{label}: the error does not name {string.Join(" or ", files)}: {e.Message}");
                outcome = (mutateWeights ? "weights" : "config") + ": InvalidDataException";
            }
            catch (Exception e) when (e is not XunitException)
            {
                throw new XunitException($"{label}: {e.GetType().Name} instead of InvalidDataException: {e}");
            }
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }
        foreach (var (outcome, count) in outcomes)
            output.WriteLine($"{outcome}: {count}");
        Assert.Equal(before, Device.BytesAllocated);
    }

    private float[] Logits(string directory)
    {
        using var model = Transformer.Load(Device, directory);
        using var memory = model.Encode([[3, 4, 5, 6]], [4]);
        using var decoded = model.Decode([[1, 3, 4]], memory, [4]);
        using var logits = model.Logits(decoded);
        return logits.ToArray();
    }

    /// <summary>One structural change: the length prefix, a header byte (changed, removed, or inserted), or the file's end.</summary>
    private static byte[] MutateWeights(byte[] file, int headerEnd, Random random, out string what)
    {
        var bytes = new List<byte>(file);
        switch (random.Next(6))
        {
            case 0:
                int delta = random.Next(1, 5) * (random.Next(2) == 0 ? -1 : 1);
                var prefix = BinaryPrimitives.ReadUInt64LittleEndian(file);
                var changed = file.ToArray();
                BinaryPrimitives.WriteUInt64LittleEndian(changed, unchecked(prefix + (ulong)delta));
                what = $"header length {delta:+#;-#}";
                return changed;
            case 1:
                int at = random.Next(headerEnd);
                byte value = (byte)random.Next(256);
                what = $"byte {at} = 0x{value:X2}";
                bytes[at] = value;
                break;
            case 2:
                at = random.Next(8, headerEnd);
                const string jsonBytes = "0123456789,:[]{}\" -.eE";
                byte printable = (byte)jsonBytes[random.Next(jsonBytes.Length)];
                what = $"header byte {at} = '{(char)printable}'";
                bytes[at] = printable;
                break;
            case 3:
                at = random.Next(8, headerEnd);
                what = $"header byte {at} removed";
                bytes.RemoveAt(at);
                break;
            case 4:
                at = random.Next(8, headerEnd);
                what = $"byte inserted at {at}";
                bytes.Insert(at, (byte)random.Next(256));
                break;
            default:
                int length = random.Next(2) == 0 ? random.Next(file.Length) : file.Length + random.Next(1, 9);
                what = $"file length {length}";
                while (bytes.Count < length)
                    bytes.Add((byte)random.Next(256));
                bytes.RemoveRange(length, bytes.Count - length);
                break;
        }
        return [.. bytes];
    }

    /// <summary>One change of the config text: a character replaced, removed or inserted, or a value swapped for another kind.</summary>
    private static string MutateConfig(string config, Random random, out string what)
    {
        var text = new StringBuilder(config);
        int at = random.Next(text.Length);
        switch (random.Next(4))
        {
            case 0:
                const string characters = "0123456789abcdefxyz_\",:{}[]-. ";
                char c = characters[random.Next(characters.Length)];
                what = $"config char {at} = '{c}'";
                text[at] = c;
                break;
            case 1:
                what = $"config char {at} removed";
                text.Remove(at, 1);
                break;
            case 2:
                const string inserted = "0123456789\",:{}[] ";
                c = inserted[random.Next(inserted.Length)];
                what = $"'{c}' inserted at {at}";
                text.Insert(at, c);
                break;
            default:
                string[] values = ["0", "-1", "2147483647", "1e40", "\"relu\"", "true", "null", "[]", "{}", "1.5"];
                string replacement = values[random.Next(values.Length)];
                var keys = TransformerConfig.Keys.Where(k => config.Contains($"\"{k}\"")).ToList();
                string key = keys[random.Next(keys.Count)];
                int start = config.IndexOf($"\"{key}\"", StringComparison.Ordinal) + key.Length + 2;
                int valueStart = config.IndexOf(':', start) + 1;
                int valueEnd = config.IndexOfAny([',', '\n', '}'], valueStart);
                what = $"{key} = {replacement}";
                return config[..valueStart] + " " + replacement + config[valueEnd..];
        }
        return text.ToString();
    }
}
