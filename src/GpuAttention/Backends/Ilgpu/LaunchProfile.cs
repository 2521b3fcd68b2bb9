using GpuAttention.Kernels;
using GpuAttention.Runtime;

namespace GpuAttention.Backends.Ilgpu;

/// <summary>
/// Group sizes and tiles the ILGPU backend launches its kernels with. The same kernels run under every profile: a GPU wants large
/// groups, while ILGPU's CPU accelerator makes each barrier a rendezvous of OS threads whose cost grows
/// with the group (~0.2 ms at 32 threads, ~2 ms at 256 here), so it runs small groups.
/// </summary>
/// <param name="MatMulGroupX">Threads along N of the tiled matmul's group; the tile is 4× this wide.</param>
/// <param name="MatMulGroupY">Threads along M; the tile is 4× this tall.</param>
/// <param name="MatMulTileK">Depth of the K slice staged in shared memory per step. The three together must be one of the
/// shapes the kernel is compiled for (<see cref="MatMulKernels.CompiledTiles"/>: 16×16 with depth 8, 16 or 32, 8×8×16, 4×8×16),
/// which makes them compile-time constants of its inner loops.</param>
/// <param name="RowGroupSize">Threads per row for softmax and layer norm.</param>
/// <param name="AttentionGroupSize">Threads per group of the fused attention kernel (a power of two).</param>
/// <param name="AttentionKeyTile">Keys streamed per step of the fused attention kernel.</param>
/// <param name="SharedMemoryBytes">Dynamic shared memory one group may use.</param>
public sealed record LaunchProfile(
    int MatMulGroupX,
    int MatMulGroupY,
    int MatMulTileK,
    int RowGroupSize,
    int AttentionGroupSize,
    int AttentionKeyTile,
    int SharedMemoryBytes)
{
    /// <summary>
    /// Warps per group of the tensor-core kernels (16-bit attention: 16 query rows per warp), 1–4; 0 (the default) runs
    /// 16-bit attention by widening to fp32 for the fp32 kernel. CUDA runs mma.sync; elsewhere the kernels run the
    /// primitives' portable bodies, which are there to check the same kernel source without a GPU, not for speed.
    /// </summary>
    public int TensorCoreWarps { get; init; }

    /// <summary>CUDA's default limit of static + dynamic shared memory per group, which ILGPU 1.5.3 does not raise.</summary>
    public const int CudaSharedMemoryLimit = 48 * 1024;

    /// <summary>
    /// For CUDA GPUs: 16×16 matmul threads (a 64×64 tile, 8 KB of shared memory, 256 threads for latency
    /// hiding); 128 threads per softmax/layer-norm row; 128-thread attention groups with 32-key tiles,
    /// which keep the attention kernel's shared memory at 33–37 KB for head dims 32–128; 4 warps (64 query rows) per
    /// tensor-core attention group.
    /// </summary>
    public static LaunchProfile Gpu { get; } = new(16, 16, 16, 128, 128, 32, CudaSharedMemoryLimit) { TensorCoreWarps = 4 };

    /// <summary>For OpenCL GPUs: <see cref="Gpu"/>'s shapes, with 16-bit attention widened to the fp32 kernel (no mma there).</summary>
    public static LaunchProfile OpenCLGpu { get; } = Gpu with { TensorCoreWarps = 0 };

    /// <summary>For ILGPU's CPU accelerator: 32-thread groups everywhere (barriers stay cheap).</summary>
    public static LaunchProfile CpuAccelerator { get; } = new(4, 8, 16, 32, 32, 16, CudaSharedMemoryLimit);

    /// <summary>
    /// For OpenCL CPU drivers (PoCL): 64-thread groups. Such a driver runs a group's work-items as loops and
    /// keeps each work-item's state that lives across a barrier in memory, so large groups buy nothing there.
    /// </summary>
    public static LaunchProfile OpenCLCpu { get; } = new(8, 8, 16, 64, 64, 32, CudaSharedMemoryLimit);

    /// <summary>The profile a device uses unless told otherwise.</summary>
    public static LaunchProfile DefaultFor(DeviceKind kind, bool isCpu) => kind switch
    {
        DeviceKind.CpuAccelerator => CpuAccelerator,
        DeviceKind.OpenCL when isCpu => OpenCLCpu,
        DeviceKind.OpenCL => OpenCLGpu,
        _ => Gpu,
    };

    internal void Validate(int maxGroupSize)
    {
        Require(MatMulGroupX > 0 && MatMulGroupY > 0 && (long)MatMulGroupX * MatMulGroupY <= maxGroupSize,
            nameof(MatMulGroupX), $"MatMulGroupX·MatMulGroupY must be in 1..{maxGroupSize}, got {MatMulGroupX}·{MatMulGroupY}");
        Require(MatMulKernels.CompiledTiles.Any(t => (t.GroupX, t.GroupY, t.Depth) == (MatMulGroupX, MatMulGroupY, MatMulTileK)), nameof(MatMulTileK),
            $"(MatMulGroupX, MatMulGroupY, MatMulTileK) must be a compiled shape of the tiled matmul ({string.Join(", ", MatMulKernels.CompiledTiles.Select(t => $"{t.GroupX}×{t.GroupY}×{t.Depth}"))}), got {MatMulGroupX}×{MatMulGroupY}×{MatMulTileK}");
        Require(RowGroupSize > 0 && RowGroupSize <= maxGroupSize, nameof(RowGroupSize),
            $"RowGroupSize must be in 1..{maxGroupSize}, got {RowGroupSize}");
        Require(AttentionGroupSize > 0 && AttentionGroupSize <= maxGroupSize && (AttentionGroupSize & (AttentionGroupSize - 1)) == 0,
            nameof(AttentionGroupSize), $"AttentionGroupSize must be a power of two in 1..{maxGroupSize}, got {AttentionGroupSize}");
        Require(AttentionKeyTile >= 8 && AttentionKeyTile <= 1024 && AttentionKeyTile % AttentionKernels.KeysPerThread == 0, nameof(AttentionKeyTile),
            $"AttentionKeyTile must be a multiple of {AttentionKernels.KeysPerThread} in 8..1024, got {AttentionKeyTile}");
        Require(TensorCoreWarps >= 0 && TensorCoreWarps <= 4 && TensorCoreWarps * MmaLayout.WarpSize <= maxGroupSize, nameof(TensorCoreWarps),
            $"TensorCoreWarps must be in 0..{Math.Min(4, maxGroupSize / MmaLayout.WarpSize)}, got {TensorCoreWarps}");
        Require(SharedMemoryBytes > 0 && SharedMemoryBytes >= sizeof(float) * (long)MatMulKernels.TiledSharedFloats(MatMulTileK, MatMulGroupX, MatMulGroupY), nameof(SharedMemoryBytes),
            $"SharedMemoryBytes {SharedMemoryBytes} cannot hold the matmul tiles");
    }

    private static void Require(bool condition, string parameter, string message)
    {
        if (!condition)
            throw new ArgumentException(message, parameter);
    }
}
