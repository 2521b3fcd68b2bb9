using System.CommandLine;
using GpuAttention.Runtime;

namespace GpuAttention.Cli;

/// <summary><c>--dtype f32|bf16|f16</c>: the dtype a model's Linear weights and product operands are held in.</summary>
internal static class DTypeOption
{
    public static Option<string> Create()
    {
        var option = new Option<string>("--dtype")
        {
            Description = "f32, bf16 or f16: the dtype of the Linear weights and of the operands of products and attention (fp32 accumulation)",
            DefaultValueFactory = _ => "f32",
        };
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<string>() is not ("f32" or "bf16" or "f16"))
                r.AddError($"--dtype must be f32, bf16 or f16, got '{r.GetValueOrDefault<string>()}'.");
        });
        return option;
    }

    /// <summary>The dtype a validated value names.</summary>
    public static DType Parse(string? value) => value switch
    {
        "bf16" => DType.BF16,
        "f16" => DType.F16,
        _ => DType.F32,
    };
}
