using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace GpuAttention.Weights;

/// <summary>A named fp32 tensor read from or written to a safetensors file.</summary>
/// <param name="Shape">Dimensions, outermost first.</param>
/// <param name="Data">Row-major values.</param>
public sealed record HostTensor(int[] Shape, float[] Data);

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
/// shape and [begin, end) byte range in the data that follows, then the raw little-endian data. The reader
/// trusts nothing in the file: the header must be UTF-8 JSON naming each tensor once; every length, offset and shape is
/// checked against the file before anything is allocated; the tensors must cover the data exactly (no holes, no
/// overlaps, no trailing bytes, as the format requires). Each failure is an <see cref="InvalidDataException"/> naming the
/// file and the tensor.
/// </summary>
public static class SafeTensors
{
    /// <summary>Headers beyond this are rejected (real headers are kilobytes).</summary>
    public const int MaxHeaderBytes = 100 * 1024 * 1024;

    /// <summary>Reads every tensor of <paramref name="path"/>; only F32 tensors are supported.</summary>
    public static IReadOnlyDictionary<string, HostTensor> Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"No safetensors file at '{path}'.", path);
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>Reads every tensor from <paramref name="stream"/>; <paramref name="name"/> is used in messages.</summary>
    public static IReadOnlyDictionary<string, HostTensor> Read(Stream stream, string name)
    {
        long fileLength = stream.Length;
        Span<byte> prefix = stackalloc byte[8];
        if (fileLength < 8 || stream.ReadAtLeast(prefix, 8, throwOnEndOfStream: false) < 8)
            throw Corrupt(name, $"the file is {fileLength} bytes, shorter than the 8-byte header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)Math.Min(fileLength - 8, MaxHeaderBytes))
            throw Corrupt(name, $"the header claims {headerLength} bytes, but only {fileLength - 8} follow (limit {MaxHeaderBytes})");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        long dataStart = 8 + (long)headerLength, dataLength = fileLength - dataStart;

        var entries = ParseHeader(headerBytes, name, dataLength);
        // The format stores the tensors back to back: every data byte belongs to exactly one tensor, in offset order.
        var result = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
        long position = 0;
        foreach (var (tensor, shape, begin, end) in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (begin < position)
                throw Corrupt(name, $"tensor '{tensor}' overlaps the tensor before it (starts at byte {begin}, the previous ends at {position})");
            if (begin > position)
                throw Corrupt(name, $"data bytes [{position}, {begin}) belong to no tensor (the next, '{tensor}', starts at {begin})");
            position = end;
            var data = new float[(end - begin) / sizeof(float)];
            stream.Position = dataStart + begin;
            stream.ReadExactly(MemoryMarshal.AsBytes(data.AsSpan())); // little-endian, as the format and every .NET platform are
            result.Add(tensor, new HostTensor(shape, data));
        }
        if (position != dataLength)
            throw Corrupt(name, $"the tensors end at data byte {position}, but {dataLength} data bytes follow the header");
        return result;
    }

    /// <summary>Writes <paramref name="tensors"/> as F32, in name order.</summary>
    public static void Write(string path, IReadOnlyDictionary<string, HostTensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, tensor) in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            long expected = tensor.Shape.Aggregate(1L, (a, b) => a * b);
            if (expected != tensor.Data.Length)
                throw new ArgumentException($"Tensor '{name}' has shape [{string.Join(", ", tensor.Shape)}] but {tensor.Data.Length} values.", nameof(tensors));
            long bytes = (long)tensor.Data.Length * sizeof(float);
            header[name] = new { dtype = "F32", shape = tensor.Shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        using var stream = File.Create(path);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
        stream.Write(prefix);
        stream.Write(json);
        for (int i = json.Length; i < padded; i++)
            stream.WriteByte((byte)' ');
        Span<byte> value = stackalloc byte[sizeof(float)];
        foreach (var (_, tensor) in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            foreach (float f in tensor.Data)
            {
                BinaryPrimitives.WriteSingleLittleEndian(value, f);
                stream.Write(value);
            }
        }
    }

    private static List<(string Name, int[] Shape, long Begin, long End)> ParseHeader(byte[] header, string file, long dataLength)
    {
        if (!Utf8.IsValid(header))
            throw Corrupt(file, "the header is not valid UTF-8");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw Corrupt(file, $"the header is not valid JSON ({e.Message})");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw Corrupt(file, "the header is not a JSON object");
            var entries = new List<(string, int[], long, long)>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!names.Add(property.Name))
                    throw Corrupt(file, $"'{property.Name}' appears twice in the header");
                if (property.Name == "__metadata__")
                {
                    if (property.Value.ValueKind != JsonValueKind.Object
                        || property.Value.EnumerateObject().Any(m => m.Value.ValueKind != JsonValueKind.String))
                        throw Corrupt(file, "__metadata__ is not an object of strings");
                    continue;
                }
                entries.Add(ParseEntry(property, file, dataLength));
            }
            return entries;
        }
    }

    private static (string, int[], long, long) ParseEntry(JsonProperty property, string file, long dataLength)
    {
        string name = property.Name;
        var e = property.Value;
        if (e.ValueKind != JsonValueKind.Object
            || !e.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String
            || !e.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array
            || !e.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Corrupt(file, $"tensor '{name}' lacks a dtype, shape or two data_offsets");
        if (dtype.GetString() != "F32")
            throw Corrupt(file, $"tensor '{name}' has dtype {dtype.GetString()}; only F32 is supported");
        var shape = new int[shapeElement.GetArrayLength()];
        long elements = 1;
        int i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt32(out int d) || d < 0)
                throw Corrupt(file, $"tensor '{name}' has an invalid dimension {dim}");
            shape[i++] = d;
            elements = elements * d > dataLength ? dataLength + 1 : elements * d;
        }
        if (offsets[0].ValueKind != JsonValueKind.Number || offsets[1].ValueKind != JsonValueKind.Number
            || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end))
            throw Corrupt(file, $"tensor '{name}' has data_offsets that are not two integers");
        if (begin < 0 || end < begin || end > dataLength)
            throw Corrupt(file, $"tensor '{name}' spans bytes [{begin}, {end}) outside the {dataLength} data bytes");
        if (end - begin != elements * sizeof(float))
            throw Corrupt(file, $"tensor '{name}' of shape [{string.Join(", ", shape)}] needs {elements * sizeof(float)} bytes but spans {end - begin}");
        return (name, shape, begin, end);
    }

    private static InvalidDataException Corrupt(string file, string what) =>
        new($"Corrupt safetensors file '{file}': {what}.");
}
