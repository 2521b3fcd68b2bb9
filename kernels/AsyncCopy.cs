using ILGPU;
using ILGPU.Runtime.Cuda;

namespace GpuAttention.Kernels;

/// <summary>
/// Copies from global to shared memory that run while the warp goes on computing: on CUDA <c>cp.async.cg</c> (16 bytes
/// a thread, L1 bypassed, completed in commit groups the thread waits for), so a kernel can stage its next tile while its
/// warps multiply the current one; elsewhere a plain copy that is complete when it returns (the group barrier the
/// kernel already has after its wait makes it visible, as on CUDA). Only the instruction differs: the same kernel runs
/// the same staging on the CPU accelerator and PoCL.
/// </summary>
public static class AsyncCopy
{
    /// <summary>Halves (16-bit elements) one copy moves: 16 bytes.</summary>
    public const int Halves = 8;

    /// <summary>
    /// Starts copying <see cref="Halves"/> halves from <paramref name="global"/>[<paramref name="globalIndex"/> …] to the
    /// dynamic shared memory's halves <paramref name="sharedIndex"/> … (seen as <paramref name="shared"/>, a view of the
    /// whole dynamic buffer): the first <paramref name="validHalves"/> (0 … 8) are read, the rest are zeros. On CUDA
    /// <paramref name="globalAddress"/> is the device address of <paramref name="global"/>'s first element (a kernel cannot
    /// take it from the view; the host passes it), and both addresses must be 16-byte aligned.
    /// </summary>
    public static void Copy16(ArrayView<ushort> shared, int sharedIndex, ArrayView<ushort> global, long globalIndex, long globalAddress,
        int validHalves)
    {
        if (CudaAsm.IsSupported)
        {
            // With no valid halves nothing is read (src-size 0): the operand's start stands in for an address past the data.
            ulong source = (ulong)(globalAddress + (validHalves > 0 ? globalIndex : 0) * sizeof(ushort));
            uint offset = (uint)sharedIndex * sizeof(ushort), sourceBytes = (uint)validHalves * sizeof(ushort);
            // Inputs only, the shared address formed in a register declared inside the asm: an inline-asm output becomes a
            // .local variable in ILGPU's PTX, and here ptxas kept ~110 of them on the stack (448 B in the gate).
            CudaAsm.Emit(
                "{ .reg .u32 target; mov.u32 target, __dyn_shared_alloca; add.u32 target, target, %0; " +
                "cp.async.cg.shared.global [target], [%1], 16, %2; }", offset, source, sourceBytes);
            return;
        }
        for (int i = 0; i < Halves; i++)
            shared[sharedIndex + i] = i < validHalves ? global[globalIndex + i] : (ushort)0;
    }

    /// <summary>
    /// <see cref="Copy16(ArrayView{ushort}, int, ArrayView{ushort}, long, long, int)"/> with all <see cref="Halves"/> halves
    /// valid: no source size, so none of the zero-fill arithmetic (the common case, inside the data).
    /// </summary>
    public static void Copy16(ArrayView<ushort> shared, int sharedIndex, ArrayView<ushort> global, long globalIndex, long globalAddress)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit(
                "{ .reg .u32 target; mov.u32 target, __dyn_shared_alloca; add.u32 target, target, %0; " +
                "cp.async.cg.shared.global [target], [%1], 16; }",
                (uint)sharedIndex * sizeof(ushort), (ulong)(globalAddress + globalIndex * sizeof(ushort)));
            return;
        }
        for (int i = 0; i < Halves; i++)
            shared[sharedIndex + i] = global[globalIndex + i];
    }

    /// <summary>Closes the copies this thread started since the last commit into one group.</summary>
    public static void Commit()
    {
        if (CudaAsm.IsSupported)
            CudaAsm.Emit("cp.async.commit_group;");
    }

    /// <summary>Waits until every group this thread committed has landed.</summary>
    public static void WaitAll()
    {
        if (CudaAsm.IsSupported)
            CudaAsm.Emit("cp.async.wait_all;");
    }

    /// <summary>Waits until at most one of this thread's committed groups (the newest) is still in flight.</summary>
    public static void WaitAllButNewest()
    {
        if (CudaAsm.IsSupported)
            CudaAsm.Emit("cp.async.wait_group 1;");
    }
}
