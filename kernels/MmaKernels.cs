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
}
