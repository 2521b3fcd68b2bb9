using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GpuAttention.Kernels;

/// <summary>Four registers a warp-level load fills, in the order the instruction names them.</summary>
public struct Registers4
{
    /// <summary>The registers.</summary>
    public uint R0, R1, R2, R3;

    /// <summary>As A's fragment, when the four matrices were A's quarters: rows 0–7 and 8–15 of columns 0–7, then of columns 8–15.</summary>
    public readonly MmaFragmentA AsFragmentA() => new() { R0 = R0, R1 = R1, R2 = R2, R3 = R3 };

    /// <summary>As B's fragments of two 8-column tiles, when the four (transposed) matrices were k 0–7 and 8–15 of columns 0–7, then of 8–15.</summary>
    public readonly (MmaFragmentB Low, MmaFragmentB High) AsFragmentsB() =>
        (new MmaFragmentB { R0 = R0, R1 = R1 }, new MmaFragmentB { R0 = R2, R1 = R3 });
}

/// <summary>How <see cref="WarpMatrix.LoadX4{TOrientation}"/> hands out an 8×8 matrix, as compile-time behaviour.</summary>
public interface IMatrixOrientation
{
    /// <summary>The ldmatrix instruction from the 32-bit shared address in %4: CUDA only.</summary>
    Registers4 LoadOnCuda(uint address);

    /// <summary>Lane <paramref name="lane"/>'s half <paramref name="half"/> of a matrix: (row, column) in it.</summary>
    (int Row, int Column) Element(int lane, int half);
}

/// <summary>As stored: lane L gets row L / 4, columns 2·(L mod 4) and + 1 (A's fragment layout).</summary>
public readonly struct AsStored : IMatrixOrientation
{
    /// <inheritdoc />
    public Registers4 LoadOnCuda(uint address)
    {
        Output<uint> r0 = default, r1 = default, r2 = default, r3 = default;
        Input<uint> at = address;
        CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];", ref r0, ref r1, ref r2, ref r3, ref at);
        return new Registers4 { R0 = r0.Value, R1 = r1.Value, R2 = r2.Value, R3 = r3.Value };
    }

    /// <inheritdoc />
    public (int Row, int Column) Element(int lane, int half) => (lane >> 2, ((lane & 3) << 1) + half);
}

/// <summary>Transposed: lane L gets rows 2·(L mod 4) and + 1 of column L / 4 (B's fragment layout from a k-major tile).</summary>
public readonly struct Transposed : IMatrixOrientation
{
    /// <inheritdoc />
    public Registers4 LoadOnCuda(uint address)
    {
        Output<uint> r0 = default, r1 = default, r2 = default, r3 = default;
        Input<uint> at = address;
        CudaAsm.EmitRef("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];", ref r0, ref r1, ref r2, ref r3, ref at);
        return new Registers4 { R0 = r0.Value, R1 = r1.Value, R2 = r2.Value, R3 = r3.Value };
    }

    /// <inheritdoc />
    public (int Row, int Column) Element(int lane, int half) => (((lane & 3) << 1) + half, lane >> 2);
}

/// <summary>
/// Warp-level loads of 16-bit matrices from shared memory into mma fragments: on CUDA one <c>ldmatrix</c> (four 8×8
/// matrices, each row 16 bytes from a 16-byte-aligned address); elsewhere a portable body in which 32 consecutive threads
/// of the group act as the warp and exchange their row addresses through <see cref="ScratchIntsPerWarp"/> shared ints per
/// warp. Its group barriers mean every thread of the group calls it together.
/// </summary>
public static class WarpMatrix
{
    /// <summary>Shared ints per warp the portable body needs (the lanes' row addresses, then a slot per lane that pins its reads); none on CUDA.</summary>
    public const int ScratchIntsPerWarp = 2 * MmaLayout.WarpSize;

    /// <summary>
    /// Lanes 8i … 8i + 7 name rows 0–7 of matrix i by <paramref name="rowStart"/>, the index of the row's first element in
    /// <paramref name="shared"/>, the dynamic shared memory seen as 16-bit elements (a multiple of 8: ldmatrix reads 16 aligned
    /// bytes). Register i of every lane receives its two elements of matrix i, as <typeparamref name="TOrientation"/> says.
    /// </summary>
    public static Registers4 LoadX4<TOrientation>(ArrayView<ushort> shared, int rowStart, ArrayView<int> scratch)
        where TOrientation : struct, IMatrixOrientation
    {
        if (CudaAsm.IsSupported)
        {
            // The 32-bit shared-window address of ILGPU's dynamic shared buffer, by its symbol (the PTX gate fails to assemble if
            // ILGPU renames it). ILGPU declares the buffer .align 4 and places it after any static shared memory, so kernels
            // that load with ldmatrix keep none (the gate shows static shared bytes) to keep its rows 16-byte aligned.
            CudaAsm.Emit("mov.u32 %0, __dyn_shared_alloca;", out uint dynamicShared);
            return default(TOrientation).LoadOnCuda(dynamicShared + (uint)rowStart * sizeof(ushort));
        }
        return LoadX4Portable<TOrientation>(shared, rowStart, scratch);
    }

    /// <summary>
    /// <see cref="LoadX4{TOrientation}"/>'s portable body alone, for kernels whose CUDA path loads otherwise: a call of the
    /// whole primitive leaves its asm outputs' <c>.local</c> variables in the PTX even where that branch is dead.
    /// </summary>
    internal static Registers4 LoadX4Portable<TOrientation>(ArrayView<ushort> shared, int rowStart, ArrayView<int> scratch)
        where TOrientation : struct, IMatrixOrientation
    {
        int lane = Group.IdxX & (MmaLayout.WarpSize - 1);
        var rows = scratch.SubView((Group.IdxX / MmaLayout.WarpSize) * ScratchIntsPerWarp, ScratchIntsPerWarp);
        rows[lane] = rowStart;
        Group.Barrier();
        var loaded = new Registers4
        {
            R0 = Gather<TOrientation>(shared, rows, lane, 0),
            R1 = Gather<TOrientation>(shared, rows, lane, 1),
            R2 = Gather<TOrientation>(shared, rows, lane, 2),
            R3 = Gather<TOrientation>(shared, rows, lane, 3),
        };
        // ILGPU 1.5.3's O2 code placement sinks loads to their first use, across a barrier: these reads would land after the
        // next one, where the next call may already have overwritten the row addresses (seen on OpenCL). A store that needs
        // every loaded value keeps the reads before it (a predicate barrier would too, but PoCL cannot build one here).
        rows[ScratchIntsPerWarp / 2 + lane] = (int)(loaded.R0 ^ loaded.R1 ^ loaded.R2 ^ loaded.R3);
        // The row addresses are free again only when every lane has read them.
        Group.Barrier();
        return loaded;
    }

    private static uint Gather<TOrientation>(ArrayView<ushort> shared, ArrayView<int> rows, int lane, int matrix)
        where TOrientation : struct, IMatrixOrientation
    {
        var (row0, column0) = default(TOrientation).Element(lane, 0);
        var (row1, column1) = default(TOrientation).Element(lane, 1);
        return MmaLayout.Pack(shared[rows[8 * matrix + row0] + column0], shared[rows[8 * matrix + row1] + column1]);
    }
}

/// <summary>Two floats rounded to nearest-even 16-bit values in one register, the first in the low bits, as compile-time behaviour.</summary>
public interface IPairPacking
{
    /// <summary>The pair, packed.</summary>
    uint Pack(float low, float high);
}

/// <summary>Two floats to a bfloat16 pair: <c>cvt.rn.bf16x2.f32</c> on CUDA.</summary>
public readonly struct Bf16Pair : IPairPacking
{
    /// <inheritdoc />
    public uint Pack(float low, float high)
    {
        if (!CudaAsm.IsSupported)
            return MmaLayout.Pack(HalfBits.BF16FromFloat(low), HalfBits.BF16FromFloat(high));
        // cvt's first source goes to the upper half.
        CudaAsm.Emit("cvt.rn.bf16x2.f32 %0, %1, %2;", out uint packed, high, low);
        return packed;
    }
}

/// <summary>Two floats to an IEEE binary16 pair: <c>cvt.rn.f16x2.f32</c> on CUDA.</summary>
public readonly struct F16Pair : IPairPacking
{
    /// <inheritdoc />
    public uint Pack(float low, float high)
    {
        if (!CudaAsm.IsSupported)
            return MmaLayout.Pack(HalfBits.F16FromFloat(low), HalfBits.F16FromFloat(high));
        CudaAsm.Emit("cvt.rn.f16x2.f32 %0, %1, %2;", out uint packed, high, low);
        return packed;
    }
}
