using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GpuAttention.Kernels;

/// <summary>
/// A warp's 32×32 tile of a product held across a K loop: 2 × 4 m16n8 accumulators, A's fragments of two 16-row tiles and
/// B's of four 8-column tiles. On CUDA they live in named PTX registers that <see cref="Clear"/> declares (wc0–31, wa0–7,
/// wb0–7) and every step names in its inline PTX, which has inputs only; elsewhere in this struct's fields, with the
/// portable <see cref="WarpMatrix"/> and <see cref="WarpMma"/> bodies.
/// </summary>
/// <remarks>
/// Why named registers: ILGPU hands every inline-asm output to the kernel through a <c>.local</c> variable, and ptxas stops
/// promoting those to registers as soon as the function contains a <c>cp.async</c> (docs/PTX-GATE.md, "cp.async"). Asm with
/// inputs only creates none, so a pipelined kernel built on this keeps a zero-byte stack. The accumulators leave through
/// shared memory (<see cref="Store"/>) for the same reason. Every method that names the registers is inlined into the one
/// kernel that calls <see cref="Clear"/> once, before the others (PTX wants a register declared before it is named; a
/// kernel may declare them once).
/// </remarks>
public struct WarpTile32x32
{
    /// <summary>Accumulator of rows 16·i … and columns 8·j … of the warp's tile (portable body).</summary>
    public MmaAccumulator C00, C01, C02, C03, C10, C11, C12, C13;

    /// <summary>The product's named operands in the order <see cref="IMmaFormat.MultiplyAccumulateWarpTileOnTensorCores"/> issues them: accumulator i·4 + j from A tile i and B tile j.</summary>
    internal const string Operands00 = " {wc0,wc1,wc2,wc3}, {wa0,wa1,wa2,wa3}, {wb0,wb1}, {wc0,wc1,wc2,wc3};",
        Operands01 = " {wc4,wc5,wc6,wc7}, {wa0,wa1,wa2,wa3}, {wb2,wb3}, {wc4,wc5,wc6,wc7};",
        Operands02 = " {wc8,wc9,wc10,wc11}, {wa0,wa1,wa2,wa3}, {wb4,wb5}, {wc8,wc9,wc10,wc11};",
        Operands03 = " {wc12,wc13,wc14,wc15}, {wa0,wa1,wa2,wa3}, {wb6,wb7}, {wc12,wc13,wc14,wc15};",
        Operands10 = " {wc16,wc17,wc18,wc19}, {wa4,wa5,wa6,wa7}, {wb0,wb1}, {wc16,wc17,wc18,wc19};",
        Operands11 = " {wc20,wc21,wc22,wc23}, {wa4,wa5,wa6,wa7}, {wb2,wb3}, {wc20,wc21,wc22,wc23};",
        Operands12 = " {wc24,wc25,wc26,wc27}, {wa4,wa5,wa6,wa7}, {wb4,wb5}, {wc24,wc25,wc26,wc27};",
        Operands13 = " {wc28,wc29,wc30,wc31}, {wa4,wa5,wa6,wa7}, {wb6,wb7}, {wc28,wc29,wc30,wc31};";

    /// <summary>The shared address of the dynamic buffer's half (or byte) offset %0 in register <c>at</c> (declare it in the block).</summary>
    internal const string SharedAddress = "mov.u32 at, __dyn_shared_alloca; add.u32 at, at, %0; ";

    /// <summary>
    /// Zeroes the accumulators; on CUDA it also declares the named registers, so a kernel calls it once, first thing (before
    /// any branch), ahead of every other method of the tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Clear()
    {
        // PTX wants the declaration above every use in the text. ILGPU lays blocks out in depth-first pre-order from the
        // branch's true target, so the CUDA body is this branch's true target (the test inverted): it is laid out next,
        // and the rest of the kernel after it. The PTX gate fails to assemble if that ever changes.
        if (!CudaAsm.IsSupported)
        {
            this = default;
            return;
        }
        CudaAsm.Emit(
            ".reg .f32 wc<32>; .reg .b32 wa<8>; .reg .b32 wb<8>; " +
            "mov.f32 wc0, 0f00000000; mov.f32 wc1, 0f00000000; mov.f32 wc2, 0f00000000; mov.f32 wc3, 0f00000000; " +
            "mov.f32 wc4, 0f00000000; mov.f32 wc5, 0f00000000; mov.f32 wc6, 0f00000000; mov.f32 wc7, 0f00000000; " +
            "mov.f32 wc8, 0f00000000; mov.f32 wc9, 0f00000000; mov.f32 wc10, 0f00000000; mov.f32 wc11, 0f00000000; " +
            "mov.f32 wc12, 0f00000000; mov.f32 wc13, 0f00000000; mov.f32 wc14, 0f00000000; mov.f32 wc15, 0f00000000; " +
            "mov.f32 wc16, 0f00000000; mov.f32 wc17, 0f00000000; mov.f32 wc18, 0f00000000; mov.f32 wc19, 0f00000000; " +
            "mov.f32 wc20, 0f00000000; mov.f32 wc21, 0f00000000; mov.f32 wc22, 0f00000000; mov.f32 wc23, 0f00000000; " +
            "mov.f32 wc24, 0f00000000; mov.f32 wc25, 0f00000000; mov.f32 wc26, 0f00000000; mov.f32 wc27, 0f00000000; " +
            "mov.f32 wc28, 0f00000000; mov.f32 wc29, 0f00000000; mov.f32 wc30, 0f00000000; mov.f32 wc31, 0f00000000;");
    }

    /// <summary>
    /// Adds the product of the staged k kk … kk + 15: A rows <paramref name="row"/> … + 31 of the A tile at half
    /// <paramref name="tileA"/> of <paramref name="shared"/>, B columns <paramref name="column"/> … + 31 of the B tile at half
    /// <paramref name="tileB"/>. Every thread of the group calls it together (the portable bodies have group barriers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void MultiplyAccumulate<TFormat, TOperandA, TOperandB>(ArrayView<ushort> shared, int tileA, int tileB, int kk, int row, int column, int lane,
        ArrayView<float> mmaScratch, ArrayView<int> matrixScratch)
        where TFormat : struct, IMmaFormat
        where TOperandA : struct, IHalfGemmOperandA
        where TOperandB : struct, IHalfGemmOperandB
    {
        if (CudaAsm.IsSupported)
        {
            default(TOperandA).LoadWarpFragmentsOnCuda(tileA, kk, row, lane);
            default(TOperandB).LoadWarpFragmentsOnCuda(tileB, kk, column, lane);
            default(TFormat).MultiplyAccumulateWarpTileOnTensorCores();
            return;
        }
        var a0 = default(TOperandA).Load(shared, tileA, kk, row, lane, matrixScratch);
        var a1 = default(TOperandA).Load(shared, tileA, kk, row + 16, lane, matrixScratch);
        var (b0, b1) = default(TOperandB).Load(shared, tileB, kk, column, lane, matrixScratch);
        var (b2, b3) = default(TOperandB).Load(shared, tileB, kk, column + 16, lane, matrixScratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref C00, a0, b0, mmaScratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref C01, a0, b1, mmaScratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref C02, a0, b2, mmaScratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref C03, a0, b3, mmaScratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref C10, a1, b0, mmaScratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref C11, a1, b1, mmaScratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref C12, a1, b2, mmaScratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref C13, a1, b3, mmaScratch);
    }

    /// <summary>
    /// Writes the tile row-major into the dynamic shared memory's floats <paramref name="start"/> … (row stride
    /// <paramref name="stride"/>, even; <paramref name="start"/> even), seen as <paramref name="sharedFloats"/>; the tile's
    /// top-left element goes to row <paramref name="row"/>, column <paramref name="column"/> (even) of that area.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void Store(ArrayView<float> sharedFloats, int start, int stride, int row, int column, int lane)
    {
        if (CudaAsm.IsSupported)
        {
            // This lane's pair of columns 2t, 2t + 1 at rows g and g + 8 of each accumulator (MmaLayout.CRow/CCol); the four
            // 8-column accumulators of a row of tiles are 32 bytes apart.
            int top = start + (row + (lane >> 2)) * stride + column + ((lane & 3) << 1);
            StoreRowOfTilesOnCuda0(top * sizeof(float), (top + 8 * stride) * sizeof(float));
            StoreRowOfTilesOnCuda1((top + 16 * stride) * sizeof(float), (top + 24 * stride) * sizeof(float));
            return;
        }
        var area = sharedFloats.SubView(start);
        StorePortable(area, stride, row, column, lane, C00);
        StorePortable(area, stride, row, column + 8, lane, C01);
        StorePortable(area, stride, row, column + 16, lane, C02);
        StorePortable(area, stride, row, column + 24, lane, C03);
        StorePortable(area, stride, row + 16, column, lane, C10);
        StorePortable(area, stride, row + 16, column + 8, lane, C11);
        StorePortable(area, stride, row + 16, column + 16, lane, C12);
        StorePortable(area, stride, row + 16, column + 24, lane, C13);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRowOfTilesOnCuda0(int top, int bottom) => CudaAsm.Emit(
        "{ .reg .u32 at, below; mov.u32 at, __dyn_shared_alloca; add.u32 below, at, %1; add.u32 at, at, %0; " +
        "st.shared.v2.f32 [at], {wc0,wc1}; st.shared.v2.f32 [below], {wc2,wc3}; " +
        "st.shared.v2.f32 [at+32], {wc4,wc5}; st.shared.v2.f32 [below+32], {wc6,wc7}; " +
        "st.shared.v2.f32 [at+64], {wc8,wc9}; st.shared.v2.f32 [below+64], {wc10,wc11}; " +
        "st.shared.v2.f32 [at+96], {wc12,wc13}; st.shared.v2.f32 [below+96], {wc14,wc15}; }", top, bottom);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRowOfTilesOnCuda1(int top, int bottom) => CudaAsm.Emit(
        "{ .reg .u32 at, below; mov.u32 at, __dyn_shared_alloca; add.u32 below, at, %1; add.u32 at, at, %0; " +
        "st.shared.v2.f32 [at], {wc16,wc17}; st.shared.v2.f32 [below], {wc18,wc19}; " +
        "st.shared.v2.f32 [at+32], {wc20,wc21}; st.shared.v2.f32 [below+32], {wc22,wc23}; " +
        "st.shared.v2.f32 [at+64], {wc24,wc25}; st.shared.v2.f32 [below+64], {wc26,wc27}; " +
        "st.shared.v2.f32 [at+96], {wc28,wc29}; st.shared.v2.f32 [below+96], {wc30,wc31}; }", top, bottom);

    private static void StorePortable(ArrayView<float> area, int stride, int row, int column, int lane, MmaAccumulator accumulator)
    {
        area[(row + MmaLayout.CRow(lane, 0)) * stride + column + MmaLayout.CCol(lane, 0)] = accumulator.C0;
        area[(row + MmaLayout.CRow(lane, 1)) * stride + column + MmaLayout.CCol(lane, 1)] = accumulator.C1;
        area[(row + MmaLayout.CRow(lane, 2)) * stride + column + MmaLayout.CCol(lane, 2)] = accumulator.C2;
        area[(row + MmaLayout.CRow(lane, 3)) * stride + column + MmaLayout.CCol(lane, 3)] = accumulator.C3;
    }
}
