using GpuAttention.Backends.Ilgpu;
using GpuAttention.Kernels;
using GpuAttention.Reference;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Tests;

/// <summary>
/// The tensor-core primitive: its fragment layout against the PTX ISA's tables, and the m16n8k16 product on every ILGPU
/// device (tensor cores on CUDA, the portable body elsewhere) against a plain double-precision product of the same 16-bit
/// values.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class MmaTests
{
    /// <summary>
    /// Entries written out from the PTX ISA's figures for mma.m16n8k16 (.f16/.bf16 A and B, .f32 C/D), for three lanes:
    /// (row, column) of a0…a7, b0…b3 and c0…c3, in register order, low half first.
    /// </summary>
    public static TheoryData<int, (int, int)[], (int, int)[], (int, int)[]> IsaTable() => new()
    {
        {
            0,
            [(0, 0), (0, 1), (8, 0), (8, 1), (0, 8), (0, 9), (8, 8), (8, 9)],
            [(0, 0), (1, 0), (8, 0), (9, 0)],
            [(0, 0), (0, 1), (8, 0), (8, 1)]
        },
        {
            5, // groupID 1, threadID_in_group 1
            [(1, 2), (1, 3), (9, 2), (9, 3), (1, 10), (1, 11), (9, 10), (9, 11)],
            [(2, 1), (3, 1), (10, 1), (11, 1)],
            [(1, 2), (1, 3), (9, 2), (9, 3)]
        },
        {
            31, // groupID 7, threadID_in_group 3
            [(7, 6), (7, 7), (15, 6), (15, 7), (7, 14), (7, 15), (15, 14), (15, 15)],
            [(6, 7), (7, 7), (14, 7), (15, 7)],
            [(7, 6), (7, 7), (15, 6), (15, 7)]
        },
    };

    [Theory]
    [MemberData(nameof(IsaTable))]
    public void LayoutMatchesThePtxIsaTables(int lane, (int, int)[] a, (int, int)[] b, (int, int)[] c)
    {
        Assert.Equal(a, Enumerable.Range(0, 8).Select(i => (MmaLayout.ARow(lane, i / 2), MmaLayout.ACol(lane, i / 2, i % 2))));
        Assert.Equal(b, Enumerable.Range(0, 4).Select(i => (MmaLayout.BRow(lane, i / 2, i % 2), MmaLayout.BCol(lane))));
        Assert.Equal(c, Enumerable.Range(0, 4).Select(e => (MmaLayout.CRow(lane, e), MmaLayout.CCol(lane, e))));
    }

    [Fact]
    public void EveryElementHasExactlyOneLane()
    {
        var lanes = Enumerable.Range(0, MmaLayout.WarpSize);
        var a = lanes.SelectMany(l => Enumerable.Range(0, 8).Select(i => (MmaLayout.ARow(l, i / 2), MmaLayout.ACol(l, i / 2, i % 2)))).ToList();
        var b = lanes.SelectMany(l => Enumerable.Range(0, 4).Select(i => (MmaLayout.BRow(l, i / 2, i % 2), MmaLayout.BCol(l)))).ToList();
        var c = lanes.SelectMany(l => Enumerable.Range(0, 4).Select(e => (MmaLayout.CRow(l, e), MmaLayout.CCol(l, e)))).ToList();
        Assert.Equal(Cells(16, 16), a.Order());
        Assert.Equal(Cells(16, 8), b.Order());
        Assert.Equal(Cells(16, 8), c.Order());

        static IEnumerable<(int, int)> Cells(int rows, int columns) =>
            Enumerable.Range(0, rows).SelectMany(r => Enumerable.Range(0, columns).Select(col => (r, col)));
    }

    [Fact]
    public void PackingPutsTheFirstElementInTheLowBits()
    {
        uint packed = MmaLayout.Pack(0x1234, 0xABCD);
        Assert.Equal(0xABCD1234u, packed);
        Assert.Equal((ushort)0x1234, MmaLayout.Unpack(packed, 0));
        Assert.Equal((ushort)0xABCD, MmaLayout.Unpack(packed, 1));
    }

    public static TheoryData<string, string> IlgpuDevicesAndFormats()
    {
        var data = new TheoryData<string, string>();
        foreach (string name in TestDevices.Names.Where(n => n != "cpu"))
        foreach (string format in new[] { "bf16", "f16" })
            data.Add(name, format);
        return data;
    }

    /// <summary>
    /// Seven tiles on groups of 64 threads (two warps): four groups, the last warp past the end. Values are exact 16-bit
    /// numbers; the reference sums their products in double, so only the fp32 accumulation of 16 products differs.
    /// </summary>
    [Theory]
    [MemberData(nameof(IlgpuDevicesAndFormats))]
    public void TileProductsMatchAPlainReference(string deviceName, string format)
    {
        const int tiles = 7, groupSize = 64;
        bool bf16 = format == "bf16";
        ushort[] a = SixteenBit.Bits(RandomData.Uniform(tiles * 256, 31, 4f), bf16), b = SixteenBit.Bits(RandomData.Uniform(tiles * 128, 32, 4f), bf16);
        float[] c = RandomData.Uniform(tiles * 128, 33, 8f);

        var accelerator = ((IlgpuBackend)TestDevices.Get(deviceName).Backend).Accelerator;
        var kernel = bf16
            ? accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, int>(MmaKernels.TileProducts<Bf16Mma>)
            : accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, int>(MmaKernels.TileProducts<F16Mma>);
        using var da = accelerator.Allocate1D(a);
        using var db = accelerator.Allocate1D(b);
        using var dc = accelerator.Allocate1D(c);
        int warpsPerGroup = groupSize / MmaLayout.WarpSize;
        var config = new KernelConfig((tiles + warpsPerGroup - 1) / warpsPerGroup, groupSize,
            SharedMemoryConfig.RequestDynamic<float>(warpsPerGroup * WarpMma.ScratchFloatsPerWarp));
        kernel(config, da.View, db.View, dc.View, tiles);
        float[] got = dc.GetAsArray1D();

        for (int t = 0; t < tiles; t++)
        for (int i = 0; i < 16; i++)
        for (int j = 0; j < 8; j++)
        {
            double want = c[t * 128 + i * 8 + j], magnitude = Math.Abs(want);
            for (int k = 0; k < 16; k++)
            {
                double product = SixteenBit.Value(a[t * 256 + i * 16 + k], bf16) * SixteenBit.Value(b[t * 128 + k * 8 + j], bf16);
                want += product;
                magnitude += Math.Abs(product);
            }
            double error = Math.Abs(got[t * 128 + i * 8 + j] - want);
            Assert.True(error <= 1e-6 * magnitude, $"tile {t} [{i}, {j}]: got {got[t * 128 + i * 8 + j]}, want {want} (error {error:E2}, sum of |terms| {magnitude:E2})");
        }
    }

    public static TheoryData<string> IlgpuDevices() => [.. TestDevices.Names.Where(n => n != "cpu")];

    /// <summary>
    /// The cp.async primitive (AsyncCopy.Copy16 with commit and wait) through its check kernel: 5 rows of 24 halves in 16-byte
    /// chunks with 19 valid halves a row, so each row has a full chunk, a partial one (3 of 8) and one read not at all — the
    /// copy must give the source's first 19 halves of every row and zeros after them.
    /// </summary>
    [Theory]
    [MemberData(nameof(IlgpuDevices))]
    public void AsyncCopyReadsTheValidHalvesAndZeroFillsTheRest(string deviceName)
    {
        const int rows = 5, stride = 24, width = 19;
        var random = new Random(43);
        ushort[] source = Enumerable.Range(0, rows * stride).Select(_ => (ushort)random.Next(1, 65536)).ToArray();
        var accelerator = ((IlgpuBackend)TestDevices.Get(deviceName).Backend).Accelerator;
        var kernel = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, int, int, int, long>(MmaKernels.CopyRowsAsync);
        using var from = accelerator.Allocate1D(source);
        using var to = accelerator.Allocate1D<ushort>(rows * stride);
        kernel(new KernelConfig(1, 64, SharedMemoryConfig.RequestDynamic<ushort>(rows * stride)), from.View, to.View, rows, stride, width,
            from.View.AsContiguous().LoadEffectiveAddressAsPtr().ToInt64());
        ushort[] got = to.GetAsArray1D();
        for (int r = 0; r < rows; r++)
        for (int j = 0; j < stride; j++)
            Assert.True((j < width ? source[r * stride + j] : 0) == got[r * stride + j], $"row {r}, half {j}: got {got[r * stride + j]}");
    }

    public static TheoryData<string, string> IlgpuDevicesAndOrientations()
    {
        var data = new TheoryData<string, string>();
        foreach (string name in TestDevices.Names.Where(n => n != "cpu"))
        foreach (string orientation in new[] { "as stored", "transposed" })
            data.Add(name, orientation);
        return data;
    }

    /// <summary>
    /// ldmatrix .x4 as the PTX ISA describes it: matrix i is the 16×16 tile's quarter i (rows 0–7 or 8–15 by i mod 2, columns
    /// 0–7 or 8–15 by i / 2); lane L's register i holds its row L / 4, columns 2·(L mod 4) and + 1 — or with .trans, rows
    /// 2·(L mod 4) and + 1 of column L / 4. Five tiles on groups of 64 threads, so a group holds two warps and the last warp
    /// of the grid loads past nothing (the tiles are its own). Also: A's fragment loaded this way is MmaFragmentA's.
    /// </summary>
    [Theory]
    [MemberData(nameof(IlgpuDevicesAndOrientations))]
    public void LoadMatricesHandOutTheIsaLayout(string deviceName, string orientation)
    {
        const int warps = 6, groupSize = 64;
        bool transposed = orientation == "transposed";
        var random = new Random(41);
        ushort[] tiles = Enumerable.Range(0, warps * 256).Select(_ => (ushort)random.Next(0, 65536)).ToArray();

        var accelerator = ((IlgpuBackend)TestDevices.Get(deviceName).Backend).Accelerator;
        var kernel = transposed
            ? accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<uint>>(MmaKernels.LoadMatrices<Transposed>)
            : accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<uint>>(MmaKernels.LoadMatrices<AsStored>);
        using var source = accelerator.Allocate1D(tiles);
        using var registers = accelerator.Allocate1D<uint>(warps * 128);
        int warpsPerGroup = groupSize / MmaLayout.WarpSize;
        kernel(new KernelConfig(warps / warpsPerGroup, groupSize, SharedMemoryConfig.RequestDynamic<byte>(
            warpsPerGroup * (16 * MmaKernels.StagedRowStride * sizeof(ushort) + WarpMatrix.ScratchIntsPerWarp * sizeof(int)))), source.View, registers.View);
        uint[] got = registers.GetAsArray1D();

        for (int w = 0; w < warps; w++)
        for (int lane = 0; lane < 32; lane++)
        for (int i = 0; i < 4; i++)
        {
            int rowBase = 8 * (i % 2), columnBase = 8 * (i / 2);
            ushort Element(int row, int column) => tiles[w * 256 + (rowBase + row) * 16 + columnBase + column];
            uint want = transposed
                ? Element(2 * (lane % 4), lane / 4) | (uint)Element(2 * (lane % 4) + 1, lane / 4) << 16
                : Element(lane / 4, 2 * (lane % 4)) | (uint)Element(lane / 4, 2 * (lane % 4) + 1) << 16;
            Assert.True(want == got[w * 128 + lane * 4 + i], $"warp {w} lane {lane} register {i}: got {got[w * 128 + lane * 4 + i]:X8}, want {want:X8}");
            if (!transposed)
            {
                var fragment = new[] { 0, 1, 2, 3 }.Select(r => MmaLayout.Pack(
                    tiles[w * 256 + MmaLayout.ARow(lane, r) * 16 + MmaLayout.ACol(lane, r, 0)],
                    tiles[w * 256 + MmaLayout.ARow(lane, r) * 16 + MmaLayout.ACol(lane, r, 1)])).ToArray();
                Assert.Equal(fragment[i], got[w * 128 + lane * 4 + i]);
            }
        }
    }

    /// <summary>
    /// Pairs of floats rounded to nearest-even 16-bit values: against .NET's Half for f16 and a double-precision rounding to
    /// 8 significant bits for bf16; halfway cases, subnormals, overflow to infinity and signed zeros included.
    /// </summary>
    [Theory]
    [MemberData(nameof(IlgpuDevicesAndFormats))]
    public void PackPairsRoundToNearestEven(string deviceName, string format)
    {
        bool bf16 = format == "bf16";
        float[] special = bf16
            ? [1f + 1f / 256, 1f + 3f / 256, -1f - 1f / 256, 3.0e38f, 3.4e38f, 1e-39f, -0f, 0f, float.PositiveInfinity, float.NegativeInfinity]
            : [1f + 1f / 2048, 1f + 3f / 2048, -1f - 1f / 2048, 65504f, 65520f, 70000f, 3e-8f, 6e-5f, -0f, float.NegativeInfinity];
        float[] values = [.. special, .. RandomData.Uniform(246, 43, 1000f)];

        var accelerator = ((IlgpuBackend)TestDevices.Get(deviceName).Backend).Accelerator;
        var kernel = bf16
            ? accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<uint>>(MmaKernels.PackPairs<Bf16Pair>)
            : accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<uint>>(MmaKernels.PackPairs<F16Pair>);
        using var source = accelerator.Allocate1D(values);
        using var packed = accelerator.Allocate1D<uint>(values.Length / 2);
        kernel(values.Length / 2, source.View, packed.View);
        uint[] got = packed.GetAsArray1D();

        for (int i = 0; i < values.Length; i++)
        {
            ushort want = bf16 ? Bf16NearestEven(values[i]) : BitConverter.HalfToUInt16Bits((System.Half)values[i]);
            ushort actual = MmaLayout.Unpack(got[i / 2], i % 2);
            Assert.True(want == actual, $"{format}({values[i]:R}): got {actual:X4}, want {want:X4}");
        }
    }

    /// <summary>bfloat16 bits of the nearest value with 8 significant bits (ties to even), from the exact double; infinity past the largest finite bf16.</summary>
    private static ushort Bf16NearestEven(float value)
    {
        if (float.IsInfinity(value) || value == 0)
            return (ushort)(BitConverter.SingleToUInt32Bits(value) >> 16);
        double magnitude = Math.Abs((double)value);
        int exponent = Math.Max(Math.ILogB(magnitude), -126);
        double quantum = Math.ScaleB(1.0, exponent - 7);
        double rounded = Math.Round(magnitude / quantum, MidpointRounding.ToEven) * quantum;
        float result = rounded > 3.3895313892515355e38 ? float.PositiveInfinity : (float)rounded;
        return (ushort)(BitConverter.SingleToUInt32Bits(value < 0 ? -result : result) >> 16);
    }
}
