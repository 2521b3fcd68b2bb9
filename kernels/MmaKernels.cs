using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>
/// The check kernel of the tensor-core primitive (<see cref="WarpMma"/>), as llm.c keeps a kernel beside its reference:
/// it runs the m16n8k16 product on whole tiles so that tests hold it to a plain reference on every backend and the PTX gate
/// sees the HMMA instruction in the SASS. The GEMM and attention kernels build on the same primitive.
/// </summary>
public static class MmaKernels
{
    /// <summary>
    /// C[w] += A[w]·B[w] for tiles w = 0 … <paramref name="tiles"/> − 1, one warp each: A[w] row-major 16×16 at w·256, B[w]
    /// k-major 16×8 at w·128, C[w] row-major 16×8 fp32 at w·128. Launch: groups of G threads (a multiple of 32, G / 32 warps),
    /// ⌈tiles / (G / 32)⌉ groups, dynamic shared memory of G / 32 · <see cref="WarpMma.ScratchFloatsPerWarp"/> floats where the
    /// portable body runs (none on CUDA).
    /// </summary>
    public static void TileProducts<TFormat>(ArrayView<ushort> a, ArrayView<ushort> b, ArrayView<float> c, int tiles)
        where TFormat : struct, IMmaFormat
    {
        int lane = Group.IdxX & (MmaLayout.WarpSize - 1);
        int warp = Grid.IdxX * (Group.DimX / MmaLayout.WarpSize) + Group.IdxX / MmaLayout.WarpSize;
        // A warp past the last tile repeats the last one and stores nothing: the portable body needs every thread at its barriers.
        long tile = XMath.Min(warp, tiles - 1);
        var accumulatorTile = c.SubView(tile * 128, 128);
        var accumulator = MmaAccumulator.Load(accumulatorTile, 8, lane);
        WarpMma.MultiplyAccumulate<TFormat>(ref accumulator,
            MmaFragmentA.Load(a.SubView(tile * 256, 256), 16, lane), MmaFragmentB.Load(b.SubView(tile * 128, 128), 8, lane),
            SharedMemory.GetDynamic<float>());
        if (warp < tiles)
            accumulator.Store(accumulatorTile, 8, lane);
    }

    /// <summary>Elements of a 16×16 tile per warp staged in shared memory at this row stride: 48 bytes keeps ldmatrix's rows 16-byte aligned and off the tile's own stride.</summary>
    public const int StagedRowStride = 24;

    /// <summary>
    /// For each warp w (G / 32 per group): its 16×16 row-major tile of 16-bit elements at w·256 is staged in shared memory
    /// (rows <see cref="StagedRowStride"/> apart), loaded with <see cref="WarpMatrix.LoadX4{TOrientation}"/> as its four
    /// 8×8 quarters (rows 0–7 and 8–15 of columns 0–7, then of 8–15), and lane L's four registers written to
    /// registers[w·128 + 4L + i]. Dynamic shared memory: G / 32 · (16 · <see cref="StagedRowStride"/> 16-bit elements, then
    /// <see cref="WarpMatrix.ScratchIntsPerWarp"/> ints).
    /// </summary>
    public static void LoadMatrices<TOrientation>(ArrayView<ushort> tiles, ArrayView<uint> registers)
        where TOrientation : struct, IMatrixOrientation
    {
        const int stagedTile = 16 * StagedRowStride;
        int warps = Group.DimX / MmaLayout.WarpSize, warpInGroup = Group.IdxX / MmaLayout.WarpSize, lane = Group.IdxX & (MmaLayout.WarpSize - 1);
        long warp = Grid.IdxX * warps + warpInGroup;
        var shared = SharedMemory.GetDynamic<ushort>();
        var scratch = SharedMemory.GetDynamic<byte>().SubView(warps * stagedTile * sizeof(ushort)).Cast<int>();
        for (int e = lane; e < 256; e += MmaLayout.WarpSize)
            shared[warpInGroup * stagedTile + (e >> 4) * StagedRowStride + (e & 15)] = tiles[warp * 256 + e];
        Group.Barrier();
        int matrix = lane >> 3, row = (lane & 7) + ((matrix & 1) << 3), column = (matrix >> 1) << 3;
        var loaded = WarpMatrix.LoadX4<TOrientation>(shared, warpInGroup * stagedTile + row * StagedRowStride + column, scratch);
        var target = registers.SubView(warp * 128 + lane * 4, 4);
        target[0] = loaded.R0;
        target[1] = loaded.R1;
        target[2] = loaded.R2;
        target[3] = loaded.R3;
    }

    /// <summary>
    /// The <see cref="AsyncCopy"/> primitive's check: one group copies <paramref name="rows"/> rows of <paramref name="stride"/>
    /// halves (a multiple of 8) from <paramref name="source"/> into shared memory (set to 0xFFFF first) in 16-byte chunks, the first
    /// <paramref name="width"/> halves of each row read and the rest zero-filled, waits for them, then writes shared memory
    /// to <paramref name="target"/> as is. <paramref name="sourceAddress"/>: the source's device address (CUDA). Dynamic
    /// shared memory: rows · stride halves.
    /// </summary>
    public static void CopyRowsAsync(ArrayView<ushort> source, ArrayView<ushort> target, int rows, int stride, int width, long sourceAddress)
    {
        var shared = SharedMemory.GetDynamic<ushort>();
        // Every half set first, so that a chunk the copy fails to zero-fill shows in the target.
        for (int e = Group.IdxX; e < rows * stride; e += Group.DimX)
            shared[e] = ushort.MaxValue;
        Group.Barrier();
        int chunksPerRow = stride / AsyncCopy.Halves;
        for (int chunk = Group.IdxX; chunk < rows * chunksPerRow; chunk += Group.DimX)
        {
            int row = chunk / chunksPerRow, column = chunk % chunksPerRow * AsyncCopy.Halves;
            int valid = XMath.Clamp(width - column, 0, AsyncCopy.Halves);
            AsyncCopy.Copy16(shared, row * stride + column, source, (long)row * stride + column, sourceAddress, valid);
        }
        AsyncCopy.Commit();
        AsyncCopy.WaitAll();
        Group.Barrier();
        for (int e = Group.IdxX; e < rows * stride; e += Group.DimX)
            target[e] = shared[e];
    }

    /// <summary>packed[i] = the pair (values[2i], values[2i + 1]) rounded to 16 bits by <typeparamref name="TPacking"/>, the first in the low bits.</summary>
    public static void PackPairs<TPacking>(Index1D i, ArrayView<float> values, ArrayView<uint> packed)
        where TPacking : struct, IPairPacking =>
        packed[i] = default(TPacking).Pack(values[2L * i], values[2L * i + 1]);
}
