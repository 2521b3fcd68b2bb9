using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GpuAttention.Kernels;

/// <summary>B's fragments of a warp's eight 8-column tiles for one k16 step (portable body of <see cref="WarpTile64x64"/>).</summary>
public struct WarpFragmentsB
{
    /// <summary>Fragment of columns 8·j … 8·j + 7.</summary>
    public MmaFragmentB B0, B1, B2, B3, B4, B5, B6, B7;
}

/// <summary>
/// A warp's 64×64 tile of a product held across a K loop: 4 × 8 m16n8 accumulators, A's fragments of four 16-row tiles and
/// B's of eight 8-column tiles. On CUDA they live in named PTX registers that <see cref="Clear"/> declares (wc0–127,
/// wa0–15, wb0–15) and every step names in its inline PTX, which has inputs only; elsewhere in this struct's fields, with
/// the portable <see cref="WarpMatrix"/> and <see cref="WarpMma"/> bodies.
/// </summary>
/// <remarks>
/// Why named registers: ILGPU hands every inline-asm output to the kernel through a <c>.local</c> variable, and ptxas stops
/// promoting those to registers as soon as the function contains a <c>cp.async</c> (docs/PTX-GATE.md, "cp.async"). Asm with
/// inputs only creates none, so a pipelined kernel built on this keeps a zero-byte stack. The accumulators leave through
/// shared memory (<see cref="Store"/>) for the same reason. Every method that names the registers is inlined into the one
/// kernel that calls <see cref="Clear"/> once, first (PTX wants a register declared above its uses; a kernel may declare
/// it once). Why 64×64: per k16 step a warp loads 8 ldmatrix.x4 (512 B each) for 32 mma.sync. At about 128 B of shared
/// memory a clock and about one m16n8k16 a clock per SM on H100/H200-class parts, that keeps the loads level with the
/// tensor cores, where a 32×32 tile (4 loads for 8 mma) would wait on shared memory half the time — an estimate from
/// published rates, not a measurement.
/// </remarks>
public struct WarpTile64x64
{
    /// <summary>Accumulator of rows 16·i … and columns 8·j … of the warp's tile, named Cij (portable body).</summary>
    public MmaAccumulator C00, C01, C02, C03, C04, C05, C06, C07, C10, C11, C12, C13, C14, C15, C16, C17, C20, C21, C22, C23, C24, C25,
        C26, C27, C30, C31, C32, C33, C34, C35, C36, C37;

    /// <summary>Operands of accumulator (i, j) in the order mma.sync names them: A tile i, B tile j.</summary>
    internal const string
        Operands00 = " {wc0,wc1,wc2,wc3}, {wa0,wa1,wa2,wa3}, {wb0,wb1}, {wc0,wc1,wc2,wc3};",
        Operands01 = " {wc4,wc5,wc6,wc7}, {wa0,wa1,wa2,wa3}, {wb2,wb3}, {wc4,wc5,wc6,wc7};",
        Operands02 = " {wc8,wc9,wc10,wc11}, {wa0,wa1,wa2,wa3}, {wb4,wb5}, {wc8,wc9,wc10,wc11};",
        Operands03 = " {wc12,wc13,wc14,wc15}, {wa0,wa1,wa2,wa3}, {wb6,wb7}, {wc12,wc13,wc14,wc15};",
        Operands04 = " {wc16,wc17,wc18,wc19}, {wa0,wa1,wa2,wa3}, {wb8,wb9}, {wc16,wc17,wc18,wc19};",
        Operands05 = " {wc20,wc21,wc22,wc23}, {wa0,wa1,wa2,wa3}, {wb10,wb11}, {wc20,wc21,wc22,wc23};",
        Operands06 = " {wc24,wc25,wc26,wc27}, {wa0,wa1,wa2,wa3}, {wb12,wb13}, {wc24,wc25,wc26,wc27};",
        Operands07 = " {wc28,wc29,wc30,wc31}, {wa0,wa1,wa2,wa3}, {wb14,wb15}, {wc28,wc29,wc30,wc31};",
        Operands10 = " {wc32,wc33,wc34,wc35}, {wa4,wa5,wa6,wa7}, {wb0,wb1}, {wc32,wc33,wc34,wc35};",
        Operands11 = " {wc36,wc37,wc38,wc39}, {wa4,wa5,wa6,wa7}, {wb2,wb3}, {wc36,wc37,wc38,wc39};",
        Operands12 = " {wc40,wc41,wc42,wc43}, {wa4,wa5,wa6,wa7}, {wb4,wb5}, {wc40,wc41,wc42,wc43};",
        Operands13 = " {wc44,wc45,wc46,wc47}, {wa4,wa5,wa6,wa7}, {wb6,wb7}, {wc44,wc45,wc46,wc47};",
        Operands14 = " {wc48,wc49,wc50,wc51}, {wa4,wa5,wa6,wa7}, {wb8,wb9}, {wc48,wc49,wc50,wc51};",
        Operands15 = " {wc52,wc53,wc54,wc55}, {wa4,wa5,wa6,wa7}, {wb10,wb11}, {wc52,wc53,wc54,wc55};",
        Operands16 = " {wc56,wc57,wc58,wc59}, {wa4,wa5,wa6,wa7}, {wb12,wb13}, {wc56,wc57,wc58,wc59};",
        Operands17 = " {wc60,wc61,wc62,wc63}, {wa4,wa5,wa6,wa7}, {wb14,wb15}, {wc60,wc61,wc62,wc63};",
        Operands20 = " {wc64,wc65,wc66,wc67}, {wa8,wa9,wa10,wa11}, {wb0,wb1}, {wc64,wc65,wc66,wc67};",
        Operands21 = " {wc68,wc69,wc70,wc71}, {wa8,wa9,wa10,wa11}, {wb2,wb3}, {wc68,wc69,wc70,wc71};",
        Operands22 = " {wc72,wc73,wc74,wc75}, {wa8,wa9,wa10,wa11}, {wb4,wb5}, {wc72,wc73,wc74,wc75};",
        Operands23 = " {wc76,wc77,wc78,wc79}, {wa8,wa9,wa10,wa11}, {wb6,wb7}, {wc76,wc77,wc78,wc79};",
        Operands24 = " {wc80,wc81,wc82,wc83}, {wa8,wa9,wa10,wa11}, {wb8,wb9}, {wc80,wc81,wc82,wc83};",
        Operands25 = " {wc84,wc85,wc86,wc87}, {wa8,wa9,wa10,wa11}, {wb10,wb11}, {wc84,wc85,wc86,wc87};",
        Operands26 = " {wc88,wc89,wc90,wc91}, {wa8,wa9,wa10,wa11}, {wb12,wb13}, {wc88,wc89,wc90,wc91};",
        Operands27 = " {wc92,wc93,wc94,wc95}, {wa8,wa9,wa10,wa11}, {wb14,wb15}, {wc92,wc93,wc94,wc95};",
        Operands30 = " {wc96,wc97,wc98,wc99}, {wa12,wa13,wa14,wa15}, {wb0,wb1}, {wc96,wc97,wc98,wc99};",
        Operands31 = " {wc100,wc101,wc102,wc103}, {wa12,wa13,wa14,wa15}, {wb2,wb3}, {wc100,wc101,wc102,wc103};",
        Operands32 = " {wc104,wc105,wc106,wc107}, {wa12,wa13,wa14,wa15}, {wb4,wb5}, {wc104,wc105,wc106,wc107};",
        Operands33 = " {wc108,wc109,wc110,wc111}, {wa12,wa13,wa14,wa15}, {wb6,wb7}, {wc108,wc109,wc110,wc111};",
        Operands34 = " {wc112,wc113,wc114,wc115}, {wa12,wa13,wa14,wa15}, {wb8,wb9}, {wc112,wc113,wc114,wc115};",
        Operands35 = " {wc116,wc117,wc118,wc119}, {wa12,wa13,wa14,wa15}, {wb10,wb11}, {wc116,wc117,wc118,wc119};",
        Operands36 = " {wc120,wc121,wc122,wc123}, {wa12,wa13,wa14,wa15}, {wb12,wb13}, {wc120,wc121,wc122,wc123};",
        Operands37 = " {wc124,wc125,wc126,wc127}, {wa12,wa13,wa14,wa15}, {wb14,wb15}, {wc124,wc125,wc126,wc127};";

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
            ".reg .f32 wc<128>; .reg .b32 wa<16>; .reg .b32 wb<16>; " +
            "mov.f32 wc0, 0f00000000; mov.f32 wc1, 0f00000000; mov.f32 wc2, 0f00000000; mov.f32 wc3, 0f00000000; mov.f32 wc4, 0f00000000; mov.f32 wc5, 0f00000000; mov.f32 wc6, 0f00000000; mov.f32 wc7, 0f00000000; " +
            "mov.f32 wc8, 0f00000000; mov.f32 wc9, 0f00000000; mov.f32 wc10, 0f00000000; mov.f32 wc11, 0f00000000; mov.f32 wc12, 0f00000000; mov.f32 wc13, 0f00000000; mov.f32 wc14, 0f00000000; mov.f32 wc15, 0f00000000; " +
            "mov.f32 wc16, 0f00000000; mov.f32 wc17, 0f00000000; mov.f32 wc18, 0f00000000; mov.f32 wc19, 0f00000000; mov.f32 wc20, 0f00000000; mov.f32 wc21, 0f00000000; mov.f32 wc22, 0f00000000; mov.f32 wc23, 0f00000000; " +
            "mov.f32 wc24, 0f00000000; mov.f32 wc25, 0f00000000; mov.f32 wc26, 0f00000000; mov.f32 wc27, 0f00000000; mov.f32 wc28, 0f00000000; mov.f32 wc29, 0f00000000; mov.f32 wc30, 0f00000000; mov.f32 wc31, 0f00000000; " +
            "mov.f32 wc32, 0f00000000; mov.f32 wc33, 0f00000000; mov.f32 wc34, 0f00000000; mov.f32 wc35, 0f00000000; mov.f32 wc36, 0f00000000; mov.f32 wc37, 0f00000000; mov.f32 wc38, 0f00000000; mov.f32 wc39, 0f00000000; " +
            "mov.f32 wc40, 0f00000000; mov.f32 wc41, 0f00000000; mov.f32 wc42, 0f00000000; mov.f32 wc43, 0f00000000; mov.f32 wc44, 0f00000000; mov.f32 wc45, 0f00000000; mov.f32 wc46, 0f00000000; mov.f32 wc47, 0f00000000; " +
            "mov.f32 wc48, 0f00000000; mov.f32 wc49, 0f00000000; mov.f32 wc50, 0f00000000; mov.f32 wc51, 0f00000000; mov.f32 wc52, 0f00000000; mov.f32 wc53, 0f00000000; mov.f32 wc54, 0f00000000; mov.f32 wc55, 0f00000000; " +
            "mov.f32 wc56, 0f00000000; mov.f32 wc57, 0f00000000; mov.f32 wc58, 0f00000000; mov.f32 wc59, 0f00000000; mov.f32 wc60, 0f00000000; mov.f32 wc61, 0f00000000; mov.f32 wc62, 0f00000000; mov.f32 wc63, 0f00000000; " +
            "mov.f32 wc64, 0f00000000; mov.f32 wc65, 0f00000000; mov.f32 wc66, 0f00000000; mov.f32 wc67, 0f00000000; mov.f32 wc68, 0f00000000; mov.f32 wc69, 0f00000000; mov.f32 wc70, 0f00000000; mov.f32 wc71, 0f00000000; " +
            "mov.f32 wc72, 0f00000000; mov.f32 wc73, 0f00000000; mov.f32 wc74, 0f00000000; mov.f32 wc75, 0f00000000; mov.f32 wc76, 0f00000000; mov.f32 wc77, 0f00000000; mov.f32 wc78, 0f00000000; mov.f32 wc79, 0f00000000; " +
            "mov.f32 wc80, 0f00000000; mov.f32 wc81, 0f00000000; mov.f32 wc82, 0f00000000; mov.f32 wc83, 0f00000000; mov.f32 wc84, 0f00000000; mov.f32 wc85, 0f00000000; mov.f32 wc86, 0f00000000; mov.f32 wc87, 0f00000000; " +
            "mov.f32 wc88, 0f00000000; mov.f32 wc89, 0f00000000; mov.f32 wc90, 0f00000000; mov.f32 wc91, 0f00000000; mov.f32 wc92, 0f00000000; mov.f32 wc93, 0f00000000; mov.f32 wc94, 0f00000000; mov.f32 wc95, 0f00000000; " +
            "mov.f32 wc96, 0f00000000; mov.f32 wc97, 0f00000000; mov.f32 wc98, 0f00000000; mov.f32 wc99, 0f00000000; mov.f32 wc100, 0f00000000; mov.f32 wc101, 0f00000000; mov.f32 wc102, 0f00000000; mov.f32 wc103, 0f00000000; " +
            "mov.f32 wc104, 0f00000000; mov.f32 wc105, 0f00000000; mov.f32 wc106, 0f00000000; mov.f32 wc107, 0f00000000; mov.f32 wc108, 0f00000000; mov.f32 wc109, 0f00000000; mov.f32 wc110, 0f00000000; mov.f32 wc111, 0f00000000; " +
            "mov.f32 wc112, 0f00000000; mov.f32 wc113, 0f00000000; mov.f32 wc114, 0f00000000; mov.f32 wc115, 0f00000000; mov.f32 wc116, 0f00000000; mov.f32 wc117, 0f00000000; mov.f32 wc118, 0f00000000; mov.f32 wc119, 0f00000000; " +
            "mov.f32 wc120, 0f00000000; mov.f32 wc121, 0f00000000; mov.f32 wc122, 0f00000000; mov.f32 wc123, 0f00000000; mov.f32 wc124, 0f00000000; mov.f32 wc125, 0f00000000; mov.f32 wc126, 0f00000000; mov.f32 wc127, 0f00000000;");
    }

    /// <summary>
    /// Adds the product of the staged k kk … kk + 15: A rows <paramref name="row"/> … + 63 of the A tile at half
    /// <paramref name="tileA"/> of <paramref name="shared"/>, B columns <paramref name="column"/> … + 63 of the B tile at half
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
        var a2 = default(TOperandA).Load(shared, tileA, kk, row + 32, lane, matrixScratch);
        var a3 = default(TOperandA).Load(shared, tileA, kk, row + 48, lane, matrixScratch);
        var b = default(WarpFragmentsB);
        (b.B0, b.B1) = default(TOperandB).Load(shared, tileB, kk, column, lane, matrixScratch);
        (b.B2, b.B3) = default(TOperandB).Load(shared, tileB, kk, column + 16, lane, matrixScratch);
        (b.B4, b.B5) = default(TOperandB).Load(shared, tileB, kk, column + 32, lane, matrixScratch);
        (b.B6, b.B7) = default(TOperandB).Load(shared, tileB, kk, column + 48, lane, matrixScratch);
        MultiplyRow<TFormat>(ref C00, ref C01, ref C02, ref C03, ref C04, ref C05, ref C06, ref C07, a0, b, mmaScratch);
        MultiplyRow<TFormat>(ref C10, ref C11, ref C12, ref C13, ref C14, ref C15, ref C16, ref C17, a1, b, mmaScratch);
        MultiplyRow<TFormat>(ref C20, ref C21, ref C22, ref C23, ref C24, ref C25, ref C26, ref C27, a2, b, mmaScratch);
        MultiplyRow<TFormat>(ref C30, ref C31, ref C32, ref C33, ref C34, ref C35, ref C36, ref C37, a3, b, mmaScratch);
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
            // This lane's pair of columns 2t, 2t + 1 at rows g and g + 8 of each accumulator (MmaLayout.CRow/CCol); the eight
            // 8-column accumulators of a row of tiles are 32 bytes apart.
            int top = start + (row + (lane >> 2)) * stride + column + ((lane & 3) << 1);
            StoreRowOfTilesOnCuda0(top * sizeof(float), (top + 8 * stride) * sizeof(float));
            StoreRowOfTilesOnCuda1((top + 16 * stride) * sizeof(float), (top + 24 * stride) * sizeof(float));
            StoreRowOfTilesOnCuda2((top + 32 * stride) * sizeof(float), (top + 40 * stride) * sizeof(float));
            StoreRowOfTilesOnCuda3((top + 48 * stride) * sizeof(float), (top + 56 * stride) * sizeof(float));
            return;
        }
        var area = sharedFloats.SubView(start);
        StoreRowPortable(area, stride, row + 0, column, lane, C00, C01, C02, C03, C04, C05, C06, C07);
        StoreRowPortable(area, stride, row + 16, column, lane, C10, C11, C12, C13, C14, C15, C16, C17);
        StoreRowPortable(area, stride, row + 32, column, lane, C20, C21, C22, C23, C24, C25, C26, C27);
        StoreRowPortable(area, stride, row + 48, column, lane, C30, C31, C32, C33, C34, C35, C36, C37);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRowOfTilesOnCuda0(int top, int bottom) => CudaAsm.Emit(
        "{ .reg .u32 at, below; mov.u32 at, __dyn_shared_alloca; add.u32 below, at, %1; add.u32 at, at, %0; " +
        "st.shared.v2.f32 [at], {wc0,wc1}; st.shared.v2.f32 [below], {wc2,wc3}; st.shared.v2.f32 [at+32], {wc4,wc5}; st.shared.v2.f32 [below+32], {wc6,wc7}; " +
        "st.shared.v2.f32 [at+64], {wc8,wc9}; st.shared.v2.f32 [below+64], {wc10,wc11}; st.shared.v2.f32 [at+96], {wc12,wc13}; st.shared.v2.f32 [below+96], {wc14,wc15}; " +
        "st.shared.v2.f32 [at+128], {wc16,wc17}; st.shared.v2.f32 [below+128], {wc18,wc19}; st.shared.v2.f32 [at+160], {wc20,wc21}; st.shared.v2.f32 [below+160], {wc22,wc23}; " +
        "st.shared.v2.f32 [at+192], {wc24,wc25}; st.shared.v2.f32 [below+192], {wc26,wc27}; st.shared.v2.f32 [at+224], {wc28,wc29}; st.shared.v2.f32 [below+224], {wc30,wc31}; }", top, bottom);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRowOfTilesOnCuda1(int top, int bottom) => CudaAsm.Emit(
        "{ .reg .u32 at, below; mov.u32 at, __dyn_shared_alloca; add.u32 below, at, %1; add.u32 at, at, %0; " +
        "st.shared.v2.f32 [at], {wc32,wc33}; st.shared.v2.f32 [below], {wc34,wc35}; st.shared.v2.f32 [at+32], {wc36,wc37}; st.shared.v2.f32 [below+32], {wc38,wc39}; " +
        "st.shared.v2.f32 [at+64], {wc40,wc41}; st.shared.v2.f32 [below+64], {wc42,wc43}; st.shared.v2.f32 [at+96], {wc44,wc45}; st.shared.v2.f32 [below+96], {wc46,wc47}; " +
        "st.shared.v2.f32 [at+128], {wc48,wc49}; st.shared.v2.f32 [below+128], {wc50,wc51}; st.shared.v2.f32 [at+160], {wc52,wc53}; st.shared.v2.f32 [below+160], {wc54,wc55}; " +
        "st.shared.v2.f32 [at+192], {wc56,wc57}; st.shared.v2.f32 [below+192], {wc58,wc59}; st.shared.v2.f32 [at+224], {wc60,wc61}; st.shared.v2.f32 [below+224], {wc62,wc63}; }", top, bottom);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRowOfTilesOnCuda2(int top, int bottom) => CudaAsm.Emit(
        "{ .reg .u32 at, below; mov.u32 at, __dyn_shared_alloca; add.u32 below, at, %1; add.u32 at, at, %0; " +
        "st.shared.v2.f32 [at], {wc64,wc65}; st.shared.v2.f32 [below], {wc66,wc67}; st.shared.v2.f32 [at+32], {wc68,wc69}; st.shared.v2.f32 [below+32], {wc70,wc71}; " +
        "st.shared.v2.f32 [at+64], {wc72,wc73}; st.shared.v2.f32 [below+64], {wc74,wc75}; st.shared.v2.f32 [at+96], {wc76,wc77}; st.shared.v2.f32 [below+96], {wc78,wc79}; " +
        "st.shared.v2.f32 [at+128], {wc80,wc81}; st.shared.v2.f32 [below+128], {wc82,wc83}; st.shared.v2.f32 [at+160], {wc84,wc85}; st.shared.v2.f32 [below+160], {wc86,wc87}; " +
        "st.shared.v2.f32 [at+192], {wc88,wc89}; st.shared.v2.f32 [below+192], {wc90,wc91}; st.shared.v2.f32 [at+224], {wc92,wc93}; st.shared.v2.f32 [below+224], {wc94,wc95}; }", top, bottom);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRowOfTilesOnCuda3(int top, int bottom) => CudaAsm.Emit(
        "{ .reg .u32 at, below; mov.u32 at, __dyn_shared_alloca; add.u32 below, at, %1; add.u32 at, at, %0; " +
        "st.shared.v2.f32 [at], {wc96,wc97}; st.shared.v2.f32 [below], {wc98,wc99}; st.shared.v2.f32 [at+32], {wc100,wc101}; st.shared.v2.f32 [below+32], {wc102,wc103}; " +
        "st.shared.v2.f32 [at+64], {wc104,wc105}; st.shared.v2.f32 [below+64], {wc106,wc107}; st.shared.v2.f32 [at+96], {wc108,wc109}; st.shared.v2.f32 [below+96], {wc110,wc111}; " +
        "st.shared.v2.f32 [at+128], {wc112,wc113}; st.shared.v2.f32 [below+128], {wc114,wc115}; st.shared.v2.f32 [at+160], {wc116,wc117}; st.shared.v2.f32 [below+160], {wc118,wc119}; " +
        "st.shared.v2.f32 [at+192], {wc120,wc121}; st.shared.v2.f32 [below+192], {wc122,wc123}; st.shared.v2.f32 [at+224], {wc124,wc125}; st.shared.v2.f32 [below+224], {wc126,wc127}; }", top, bottom);

    private static void MultiplyRow<TFormat>(ref MmaAccumulator c0, ref MmaAccumulator c1, ref MmaAccumulator c2, ref MmaAccumulator c3,
        ref MmaAccumulator c4, ref MmaAccumulator c5, ref MmaAccumulator c6, ref MmaAccumulator c7, MmaFragmentA a, WarpFragmentsB b,
        ArrayView<float> scratch)
        where TFormat : struct, IMmaFormat
    {
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref c0, a, b.B0, scratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref c1, a, b.B1, scratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref c2, a, b.B2, scratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref c3, a, b.B3, scratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref c4, a, b.B4, scratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref c5, a, b.B5, scratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref c6, a, b.B6, scratch);
        WarpMma.MultiplyAccumulatePortable<TFormat>(ref c7, a, b.B7, scratch);
    }

    private static void StoreRowPortable(ArrayView<float> area, int stride, int row, int column, int lane, MmaAccumulator c0, MmaAccumulator c1,
        MmaAccumulator c2, MmaAccumulator c3, MmaAccumulator c4, MmaAccumulator c5, MmaAccumulator c6, MmaAccumulator c7)
    {
        StorePortable(area, stride, row, column, lane, c0);
        StorePortable(area, stride, row, column + 8, lane, c1);
        StorePortable(area, stride, row, column + 16, lane, c2);
        StorePortable(area, stride, row, column + 24, lane, c3);
        StorePortable(area, stride, row, column + 32, lane, c4);
        StorePortable(area, stride, row, column + 40, lane, c5);
        StorePortable(area, stride, row, column + 48, lane, c6);
        StorePortable(area, stride, row, column + 56, lane, c7);
    }

    private static void StorePortable(ArrayView<float> area, int stride, int row, int column, int lane, MmaAccumulator accumulator)
    {
        area[(row + MmaLayout.CRow(lane, 0)) * stride + column + MmaLayout.CCol(lane, 0)] = accumulator.C0;
        area[(row + MmaLayout.CRow(lane, 1)) * stride + column + MmaLayout.CCol(lane, 1)] = accumulator.C1;
        area[(row + MmaLayout.CRow(lane, 2)) * stride + column + MmaLayout.CCol(lane, 2)] = accumulator.C2;
        area[(row + MmaLayout.CRow(lane, 3)) * stride + column + MmaLayout.CCol(lane, 3)] = accumulator.C3;
    }
}
