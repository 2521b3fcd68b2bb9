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
        ushort[] a = Bits(RandomData.Uniform(tiles * 256, 31, 4f), bf16), b = Bits(RandomData.Uniform(tiles * 128, 32, 4f), bf16);
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
                double product = Value(a[t * 256 + i * 16 + k], bf16) * Value(b[t * 128 + k * 8 + j], bf16);
                want += product;
                magnitude += Math.Abs(product);
            }
            double error = Math.Abs(got[t * 128 + i * 8 + j] - want);
            Assert.True(error <= 1e-6 * magnitude, $"tile {t} [{i}, {j}]: got {got[t * 128 + i * 8 + j]}, want {want} (error {error:E2}, sum of |terms| {magnitude:E2})");
        }
    }

    /// <summary>Each value as the format's bits: .NET's Half for f16; for bf16 the float's top 16 bits (truncation: the values only need to be exact bf16 numbers).</summary>
    private static ushort[] Bits(float[] values, bool bf16) =>
        values.Select(v => bf16 ? (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16) : BitConverter.HalfToUInt16Bits((System.Half)v)).ToArray();

    private static double Value(ushort bits, bool bf16) =>
        bf16 ? BitConverter.UInt32BitsToSingle((uint)bits << 16) : (double)BitConverter.UInt16BitsToHalf(bits);
}
