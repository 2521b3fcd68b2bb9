using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GpuAttention.Kernels;

/// <summary>
/// Which lane of a warp holds which elements of the m16n8k16 tensor-core product (PTX ISA, "Matrix Fragments for
/// mma.m16n8k16" with .f16/.bf16 inputs and .f32 accumulators). With g = lane / 4 and t = lane mod 4: A (16×16, row-major)
/// is 4 registers of two packed halves, register r holding row g + 8·(r mod 2), columns 2t + h + 8·(r / 2); B (16×8, "col")
/// is 2 registers, register r holding rows 2t + h + 8·r of column g; the accumulator (16×8) is 4 floats, element e at row
/// g + 8·(e / 2), column 2t + (e mod 2). Half h = 0 is the register's low 16 bits.
/// </summary>
public static class MmaLayout
{
    /// <summary>Lanes of a warp, physical on CUDA, 32 consecutive threads of a group elsewhere.</summary>
    public const int WarpSize = 32;

    /// <summary>Row of A held by <paramref name="lane"/>'s register <paramref name="register"/> (0–3).</summary>
    public static int ARow(int lane, int register) => (lane >> 2) + ((register & 1) << 3);

    /// <summary>Column of A held by half <paramref name="half"/> (0: low bits) of <paramref name="lane"/>'s register <paramref name="register"/>.</summary>
    public static int ACol(int lane, int register, int half) => ((lane & 3) << 1) + half + ((register >> 1) << 3);

    /// <summary>Row (k) of B held by half <paramref name="half"/> of <paramref name="lane"/>'s register <paramref name="register"/> (0–1).</summary>
    public static int BRow(int lane, int register, int half) => ((lane & 3) << 1) + half + (register << 3);

    /// <summary>Column (n) of B held by <paramref name="lane"/>.</summary>
    public static int BCol(int lane) => lane >> 2;

    /// <summary>Row of the accumulator's element <paramref name="element"/> (0–3) in <paramref name="lane"/>.</summary>
    public static int CRow(int lane, int element) => (lane >> 2) + ((element >> 1) << 3);

    /// <summary>Column of the accumulator's element <paramref name="element"/> (0–3) in <paramref name="lane"/>.</summary>
    public static int CCol(int lane, int element) => ((lane & 3) << 1) + (element & 1);

    /// <summary>Two 16-bit elements in one register, the first in the low bits (as PTX's packed .f16x2/.bf16x2).</summary>
    public static uint Pack(ushort low, ushort high) => low | ((uint)high << 16);

    /// <summary>Half <paramref name="half"/> (0: low bits) of a packed register.</summary>
    public static ushort Unpack(uint packed, int half) => (ushort)(packed >> (half << 4));
}

/// <summary>A lane's share of A (16×16) for an m16n8k16 product: 4 registers of two packed 16-bit elements (<see cref="MmaLayout"/>).</summary>
public struct MmaFragmentA
{
    /// <summary>The registers, in the order mma.sync takes them.</summary>
    public uint R0, R1, R2, R3;

    /// <summary><paramref name="lane"/>'s fragment of the row-major 16×16 tile at <paramref name="tile"/> with row stride <paramref name="stride"/>.</summary>
    public static MmaFragmentA Load(ArrayView<ushort> tile, int stride, int lane) => new()
    {
        R0 = LoadRegister(tile, stride, lane, 0),
        R1 = LoadRegister(tile, stride, lane, 1),
        R2 = LoadRegister(tile, stride, lane, 2),
        R3 = LoadRegister(tile, stride, lane, 3),
    };

    private static uint LoadRegister(ArrayView<ushort> tile, int stride, int lane, int register)
    {
        int row = MmaLayout.ARow(lane, register) * stride;
        return MmaLayout.Pack(tile[row + MmaLayout.ACol(lane, register, 0)], tile[row + MmaLayout.ACol(lane, register, 1)]);
    }
}

/// <summary>A lane's share of B (16×8) for an m16n8k16 product: 2 registers of two packed 16-bit elements (<see cref="MmaLayout"/>).</summary>
public struct MmaFragmentB
{
    /// <summary>The registers, in the order mma.sync takes them.</summary>
    public uint R0, R1;

    /// <summary><paramref name="lane"/>'s fragment of the 16×8 tile stored k-major (element [k, n] at k·<paramref name="stride"/> + n).</summary>
    public static MmaFragmentB Load(ArrayView<ushort> tile, int stride, int lane) => new()
    {
        R0 = LoadRegister(tile, stride, lane, 0),
        R1 = LoadRegister(tile, stride, lane, 1),
    };

    private static uint LoadRegister(ArrayView<ushort> tile, int stride, int lane, int register)
    {
        int column = MmaLayout.BCol(lane);
        return MmaLayout.Pack(tile[MmaLayout.BRow(lane, register, 0) * stride + column], tile[MmaLayout.BRow(lane, register, 1) * stride + column]);
    }
}

/// <summary>A lane's share of the fp32 accumulator (16×8) of an m16n8k16 product (<see cref="MmaLayout"/>).</summary>
public struct MmaAccumulator
{
    /// <summary>The elements, in the order mma.sync takes them.</summary>
    public float C0, C1, C2, C3;

    /// <summary><paramref name="lane"/>'s elements of the row-major 16×8 tile at <paramref name="tile"/>.</summary>
    public static MmaAccumulator Load(ArrayView<float> tile, int stride, int lane) => new()
    {
        C0 = tile[MmaLayout.CRow(lane, 0) * stride + MmaLayout.CCol(lane, 0)],
        C1 = tile[MmaLayout.CRow(lane, 1) * stride + MmaLayout.CCol(lane, 1)],
        C2 = tile[MmaLayout.CRow(lane, 2) * stride + MmaLayout.CCol(lane, 2)],
        C3 = tile[MmaLayout.CRow(lane, 3) * stride + MmaLayout.CCol(lane, 3)],
    };

    /// <summary>Writes <paramref name="lane"/>'s elements into the row-major 16×8 tile at <paramref name="tile"/>.</summary>
    public readonly void Store(ArrayView<float> tile, int stride, int lane)
    {
        tile[MmaLayout.CRow(lane, 0) * stride + MmaLayout.CCol(lane, 0)] = C0;
        tile[MmaLayout.CRow(lane, 1) * stride + MmaLayout.CCol(lane, 1)] = C1;
        tile[MmaLayout.CRow(lane, 2) * stride + MmaLayout.CCol(lane, 2)] = C2;
        tile[MmaLayout.CRow(lane, 3) * stride + MmaLayout.CCol(lane, 3)] = C3;
    }
}

/// <summary>
/// A 16-bit input format of the tensor cores, as compile-time behaviour: its mma.sync instruction (a string literal, as
/// inline PTX needs) and the exact widening to float that the portable path uses.
/// </summary>
public interface IMmaFormat
{
    /// <summary>c += a·b by <c>mma.sync.aligned.m16n8k16.row.col.f32.{format}.{format}.f32</c>: CUDA only.</summary>
    void MultiplyAccumulateOnTensorCores(ref MmaAccumulator c, MmaFragmentA a, MmaFragmentB b);

    /// <summary>The 32 mma.sync of a <see cref="WarpTile64x64"/> step over its named registers: CUDA only.</summary>
    void MultiplyAccumulateWarpTileOnTensorCores();

    /// <summary>The element's exact value.</summary>
    float ToFloat(ushort bits);
}

/// <summary>bfloat16 inputs.</summary>
public readonly struct Bf16Mma : IMmaFormat
{
    private const string Instruction = "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32";

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void MultiplyAccumulateWarpTileOnTensorCores() => CudaAsm.Emit(
        Instruction + WarpTile64x64.Operands00 + Instruction + WarpTile64x64.Operands01 + Instruction + WarpTile64x64.Operands02 + Instruction + WarpTile64x64.Operands03 +
        Instruction + WarpTile64x64.Operands04 + Instruction + WarpTile64x64.Operands05 + Instruction + WarpTile64x64.Operands06 + Instruction + WarpTile64x64.Operands07 +
        Instruction + WarpTile64x64.Operands10 + Instruction + WarpTile64x64.Operands11 + Instruction + WarpTile64x64.Operands12 + Instruction + WarpTile64x64.Operands13 +
        Instruction + WarpTile64x64.Operands14 + Instruction + WarpTile64x64.Operands15 + Instruction + WarpTile64x64.Operands16 + Instruction + WarpTile64x64.Operands17 +
        Instruction + WarpTile64x64.Operands20 + Instruction + WarpTile64x64.Operands21 + Instruction + WarpTile64x64.Operands22 + Instruction + WarpTile64x64.Operands23 +
        Instruction + WarpTile64x64.Operands24 + Instruction + WarpTile64x64.Operands25 + Instruction + WarpTile64x64.Operands26 + Instruction + WarpTile64x64.Operands27 +
        Instruction + WarpTile64x64.Operands30 + Instruction + WarpTile64x64.Operands31 + Instruction + WarpTile64x64.Operands32 + Instruction + WarpTile64x64.Operands33 +
        Instruction + WarpTile64x64.Operands34 + Instruction + WarpTile64x64.Operands35 + Instruction + WarpTile64x64.Operands36 + Instruction + WarpTile64x64.Operands37);

    /// <inheritdoc />
    public void MultiplyAccumulateOnTensorCores(ref MmaAccumulator c, MmaFragmentA a, MmaFragmentB b)
    {
        Ref<float> d0 = c.C0, d1 = c.C1, d2 = c.C2, d3 = c.C3;
        Input<uint> a0 = a.R0, a1 = a.R1, a2 = a.R2, a3 = a.R3, b0 = b.R0, b1 = b.R1;
        CudaAsm.EmitRef(Instruction + " {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
            ref d0, ref d1, ref d2, ref d3, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1);
        c = new MmaAccumulator { C0 = d0.Value, C1 = d1.Value, C2 = d2.Value, C3 = d3.Value };
    }

    /// <inheritdoc />
    public float ToFloat(ushort bits) => HalfBits.BF16ToFloat(bits);
}

/// <summary>IEEE binary16 inputs.</summary>
public readonly struct F16Mma : IMmaFormat
{
    private const string Instruction = "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32";

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void MultiplyAccumulateWarpTileOnTensorCores() => CudaAsm.Emit(
        Instruction + WarpTile64x64.Operands00 + Instruction + WarpTile64x64.Operands01 + Instruction + WarpTile64x64.Operands02 + Instruction + WarpTile64x64.Operands03 +
        Instruction + WarpTile64x64.Operands04 + Instruction + WarpTile64x64.Operands05 + Instruction + WarpTile64x64.Operands06 + Instruction + WarpTile64x64.Operands07 +
        Instruction + WarpTile64x64.Operands10 + Instruction + WarpTile64x64.Operands11 + Instruction + WarpTile64x64.Operands12 + Instruction + WarpTile64x64.Operands13 +
        Instruction + WarpTile64x64.Operands14 + Instruction + WarpTile64x64.Operands15 + Instruction + WarpTile64x64.Operands16 + Instruction + WarpTile64x64.Operands17 +
        Instruction + WarpTile64x64.Operands20 + Instruction + WarpTile64x64.Operands21 + Instruction + WarpTile64x64.Operands22 + Instruction + WarpTile64x64.Operands23 +
        Instruction + WarpTile64x64.Operands24 + Instruction + WarpTile64x64.Operands25 + Instruction + WarpTile64x64.Operands26 + Instruction + WarpTile64x64.Operands27 +
        Instruction + WarpTile64x64.Operands30 + Instruction + WarpTile64x64.Operands31 + Instruction + WarpTile64x64.Operands32 + Instruction + WarpTile64x64.Operands33 +
        Instruction + WarpTile64x64.Operands34 + Instruction + WarpTile64x64.Operands35 + Instruction + WarpTile64x64.Operands36 + Instruction + WarpTile64x64.Operands37);

    /// <inheritdoc />
    public void MultiplyAccumulateOnTensorCores(ref MmaAccumulator c, MmaFragmentA a, MmaFragmentB b)
    {
        Ref<float> d0 = c.C0, d1 = c.C1, d2 = c.C2, d3 = c.C3;
        Input<uint> a0 = a.R0, a1 = a.R1, a2 = a.R2, a3 = a.R3, b0 = b.R0, b1 = b.R1;
        CudaAsm.EmitRef(Instruction + " {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
            ref d0, ref d1, ref d2, ref d3, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1);
        c = new MmaAccumulator { C0 = d0.Value, C1 = d1.Value, C2 = d2.Value, C3 = d3.Value };
    }

    /// <inheritdoc />
    public float ToFloat(ushort bits) => HalfBits.F16ToFloat(bits);
}

/// <summary>
/// The warp-level m16n8k16 product c += a·b, fp32 accumulation: on CUDA one <c>mma.sync</c> per warp; elsewhere (CPU
/// accelerator, OpenCL) a portable body with the same fragments, where 32 consecutive threads of the group act as the warp
/// and exchange their fragments through <see cref="ScratchFloatsPerWarp"/> floats of shared memory per warp. The portable
/// body has group barriers, so every thread of the group calls this together, as CUDA's <c>.aligned</c> form asks of a warp.
/// </summary>
public static class WarpMma
{
    /// <summary>Shared floats per warp the portable body needs (each lane's four A and two B registers, as their bits); none on CUDA.</summary>
    public const int ScratchFloatsPerWarp = 6 * MmaLayout.WarpSize;

    /// <summary>c += a·b for this thread's warp. <paramref name="scratch"/>: the group's portable-body scratch (G / 32 warps' worth; unused on CUDA).</summary>
    public static void MultiplyAccumulate<TFormat>(ref MmaAccumulator c, MmaFragmentA a, MmaFragmentB b, ArrayView<float> scratch)
        where TFormat : struct, IMmaFormat
    {
        if (CudaAsm.IsSupported)
        {
            default(TFormat).MultiplyAccumulateOnTensorCores(ref c, a, b);
            return;
        }
        MultiplyAccumulatePortable<TFormat>(ref c, a, b, scratch);
    }

    /// <summary>
    /// <see cref="MultiplyAccumulate{TFormat}"/>'s portable body alone, for kernels whose CUDA path multiplies otherwise: a call
    /// of the whole primitive leaves its asm outputs' <c>.local</c> variables in the PTX even where that branch is dead.
    /// </summary>
    internal static void MultiplyAccumulatePortable<TFormat>(ref MmaAccumulator c, MmaFragmentA a, MmaFragmentB b, ArrayView<float> scratch)
        where TFormat : struct, IMmaFormat
    {
        int lane = Group.IdxX & (MmaLayout.WarpSize - 1);
        var registers = scratch.SubView((Group.IdxX / MmaLayout.WarpSize) * ScratchFloatsPerWarp, ScratchFloatsPerWarp);
        // Every lane's registers as they are, register r of lane L at r·32 + L (A's four, then B's two), widened only where
        // they are read: one loop body converts, so the kernels built on this stay small for OpenCL compilers to digest.
        registers[lane] = Interop.IntAsFloat(a.R0);
        registers[MmaLayout.WarpSize + lane] = Interop.IntAsFloat(a.R1);
        registers[2 * MmaLayout.WarpSize + lane] = Interop.IntAsFloat(a.R2);
        registers[3 * MmaLayout.WarpSize + lane] = Interop.IntAsFloat(a.R3);
        registers[4 * MmaLayout.WarpSize + lane] = Interop.IntAsFloat(b.R0);
        registers[5 * MmaLayout.WarpSize + lane] = Interop.IntAsFloat(b.R1);
        Group.Barrier();
        // This lane's accumulator elements are rows g, g + 8 and columns 2t, 2t + 1 (MmaLayout.CRow/CCol). By the same
        // tables, A[row, k] is half k mod 2 of register (row / 8) + 2·(k / 8) of lane 4·(row mod 8) + (k mod 8) / 2, and
        // B[k, n] half k mod 2 of register k / 8 of lane 4n + (k mod 8) / 2.
        var format = default(TFormat);
        int g = lane >> 2, column = (lane & 3) << 1;
        float c0 = 0f, c1 = 0f, c2 = 0f, c3 = 0f;
        for (int k = 0; k < 16; k++)
        {
            int half = k & 1, holder = (k & 7) >> 1, block = k >> 3;
            float top = format.ToFloat(MmaLayout.Unpack(Interop.FloatAsInt(registers[2 * block * MmaLayout.WarpSize + 4 * g + holder]), half));
            float bottom = format.ToFloat(MmaLayout.Unpack(Interop.FloatAsInt(registers[(2 * block + 1) * MmaLayout.WarpSize + 4 * g + holder]), half));
            float left = format.ToFloat(MmaLayout.Unpack(Interop.FloatAsInt(registers[(4 + block) * MmaLayout.WarpSize + 4 * column + holder]), half));
            float right = format.ToFloat(MmaLayout.Unpack(Interop.FloatAsInt(registers[(4 + block) * MmaLayout.WarpSize + 4 * (column + 1) + holder]), half));
            c0 += top * left;
            c1 += top * right;
            c2 += bottom * left;
            c3 += bottom * right;
        }
        c.C0 += c0;
        c.C1 += c1;
        c.C2 += c2;
        c.C3 += c3;
        // The scratch is free again only when every lane has read it.
        Group.Barrier();
    }
}
