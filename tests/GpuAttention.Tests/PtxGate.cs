using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;
using GpuAttention.Backends.Ilgpu;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace GpuAttention.Tests;

/// <summary>
/// Compiles an ILGPU kernel to PTX exactly as a CUDA device would (the production context configuration, the same entry
/// point description and an empty specialisation), with no GPU present, and assembles it with NVIDIA's ptxas for a given
/// architecture: registers, stack frame, spills, static shared memory, and the SASS.
/// </summary>
internal static partial class PtxGate
{
    /// <summary>The architectures every kernel is assembled for: A100 (sm_80) and H100/H200 (sm_90).</summary>
    public static readonly string[] Architectures = ["sm_80", "sm_90"];

    /// <summary>ptxas, from <c>tools/cuda/provide-ptxas.sh</c>; null when absent.</summary>
    public static string? Ptxas => Tool("GPUATTENTION_PTXAS");

    /// <summary>cuobjdump beside it.</summary>
    public static string? Cuobjdump => Tool("GPUATTENTION_CUOBJDUMP");

    /// <summary>True when CI (or the caller) demands the assembler: then its absence fails the gate instead of narrowing it to PTX.</summary>
    public static bool Required => Environment.GetEnvironmentVariable("GPUATTENTION_REQUIRE_PTXAS") == "1";

    private static readonly Lazy<Context> SharedContext = new(() => Context.Create(IlgpuBackend.Configure));
    private static readonly Dictionary<string, PTXBackend> Backends = [];
    private static readonly Dictionary<(string Name, string Architecture), Assembly> Assembled = [];

    /// <summary>What ptxas reports for one kernel on one architecture.</summary>
    public sealed record Assembly(int Registers, int StackBytes, int SpillStores, int SpillLoads, int StaticSharedBytes, string Sass);

    /// <summary>The kernel's PTX for <paramref name="architecture"/>.</summary>
    public static string Compile(MethodInfo kernel, bool explicitlyGrouped, string architecture)
    {
        PTXBackend backend;
        lock (Backends)
        {
            if (!Backends.TryGetValue(architecture, out backend!))
            {
                var arch = architecture == "sm_90" ? CudaArchitecture.SM_90 : CudaArchitecture.SM_80;
                Backends[architecture] = backend = new PTXBackend(SharedContext.Value, new CudaCapabilityContext(arch), arch,
                    CudaInstructionSet.ISA_84, nvvmAPI: null);
            }
        }
        var entry = explicitlyGrouped ? EntryPointDescription.FromExplicitlyGroupedKernel(kernel) : EntryPointDescription.FromImplicitlyGroupedKernel(kernel);
        // One compilation at a time on the shared context (only ptxas runs in parallel, in AssembleAll).
        lock (SharedContext)
            return ((PTXCompiledKernel)backend.Compile(entry, KernelSpecialization.Empty)).PTXAssembly;
    }

    /// <summary>
    /// The kernel compiled and assembled for <paramref name="architecture"/>, once per test run (the report table and the
    /// per-kernel checks share it). With GPUATTENTION_GATE_SASS naming a folder, the PTX and SASS are also written there.
    /// </summary>
    public static Assembly Gate(string name, MethodInfo kernel, bool explicitlyGrouped, string architecture)
    {
        lock (Assembled)
        {
            if (Assembled.TryGetValue((name, architecture), out var known))
                return known;
        }
        string file = new(name.Select(c => char.IsLetterOrDigit(c) ? c : '_').ToArray());
        string ptx = Compile(kernel, explicitlyGrouped, architecture);
        // The PTX is written before ptxas runs, so that PTX it rejects can be read.
        string? folder = Environment.GetEnvironmentVariable("GPUATTENTION_GATE_SASS") is { Length: > 0 } named ? named : null;
        if (folder is not null)
        {
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, $"{file}.{architecture}.ptx"), ptx);
        }
        var assembled = Assemble(ptx, architecture, file);
        if (folder is not null)
            File.WriteAllText(Path.Combine(folder, $"{file}.{architecture}.sass"), assembled.Sass);
        lock (Assembled)
            Assembled[(name, architecture)] = assembled;
        return assembled;
    }

    /// <summary>
    /// Compiles and assembles every (kernel, architecture) pair up front, as many at a time as there are processors (ptxas is
    /// single-threaded; this is most of the gate's time), so that the tests then read cached results. A pair that fails is
    /// left for its own test, whose call of <see cref="Gate"/> repeats it and reports the error (nothing is cached for it).
    /// </summary>
    public static void AssembleAll(IEnumerable<(string Name, MethodInfo Kernel, bool ExplicitlyGrouped)> kernels)
    {
        // The tensor-core kernels take ptxas longest: started first, they do not end up alone at the end.
        var pairs = kernels.SelectMany(k => Architectures.Select(architecture => (k.Name, k.Kernel, k.ExplicitlyGrouped, Architecture: architecture)))
            .OrderByDescending(pair => pair.Name.Contains("TensorCore", StringComparison.Ordinal)).ToList();
        Parallel.ForEach(pairs, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, pair =>
        {
            try
            {
                Gate(pair.Name, pair.Kernel, pair.ExplicitlyGrouped, pair.Architecture);
            }
            catch (Exception)
            {
                // ILGPU or ptxas rejected it: the pair's own test repeats the call and reports the error.
            }
        });
    }

    /// <summary>Assembles <paramref name="ptx"/> for <paramref name="architecture"/> with ptxas -v and disassembles the result.</summary>
    private static Assembly Assemble(string ptx, string architecture, string name)
    {
        string folder = Directory.CreateTempSubdirectory("ptx-gate").FullName;
        try
        {
            string source = Path.Combine(folder, name + ".ptx"), cubin = Path.Combine(folder, name + ".cubin");
            File.WriteAllText(source, ptx);
            string report = Run(Ptxas!, $"-arch={architecture} -v -o \"{cubin}\" \"{source}\"");
            string sass = Run(Cuobjdump!, $"-sass \"{cubin}\"");
            int Number(Regex pattern) => pattern.Match(report) is { Success: true } m ? int.Parse(m.Groups[1].Value) : 0;
            return new Assembly(Number(RegistersPattern()), Number(StackPattern()), Number(SpillStoresPattern()), Number(SpillLoadsPattern()),
                Number(SharedPattern()), sass);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// Theoretical occupancy on sm_90 (2048 threads, 32 groups, 64 K registers and 228 KB of shared memory per SM; registers
    /// allocated per warp in units of 256, shared memory with 1 KB reserved per group): the fraction of the SM's threads
    /// that can be resident.
    /// </summary>
    public static double Occupancy(int registers, int threadsPerGroup, int sharedBytes)
    {
        int warps = (threadsPerGroup + 31) / 32;
        int registersPerWarp = (Math.Max(registers, 1) * 32 + 255) / 256 * 256;
        int byRegisters = 65536 / registersPerWarp / warps;
        int byShared = sharedBytes == 0 ? 32 : 228 * 1024 / (sharedBytes + 1024);
        int byThreads = 2048 / (warps * 32);
        int groups = Math.Min(32, Math.Min(byRegisters, Math.Min(byShared, byThreads)));
        return groups * warps / 64.0;
    }

    private static string? Tool(string variable) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } path && File.Exists(path) ? path : null;

    private static string Run(string tool, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(tool, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        string errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Path.GetFileName(tool)} {arguments} failed ({process.ExitCode}): {errors}{output.Result}");
        return output.Result + errors;
    }

    [GeneratedRegex(@"Used (\d+) registers")]
    private static partial Regex RegistersPattern();

    [GeneratedRegex(@"(\d+) bytes stack frame")]
    private static partial Regex StackPattern();

    [GeneratedRegex(@"(\d+) bytes spill stores")]
    private static partial Regex SpillStoresPattern();

    [GeneratedRegex(@"(\d+) bytes spill loads")]
    private static partial Regex SpillLoadsPattern();

    [GeneratedRegex(@"(\d+) bytes smem")]
    private static partial Regex SharedPattern();
}
