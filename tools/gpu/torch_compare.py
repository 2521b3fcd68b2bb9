#!/usr/bin/env python3
"""Run PyTorch on the cases our benchmark CLI recorded and set the two side by side.

Usage:
    python3 tools/gpu/torch_compare.py --results DIR/results.json --out OUTDIR \
        [--device cuda|cpu] [--seconds 0.5]

For every case in results.json that passed and saved its tensors, this loads the
inputs and our output from the case's safetensors file, computes the same problem
with PyTorch (F32, TF32 off), reports the largest relative difference between the
two outputs, and times PyTorch the same way for every case. It writes
OUTDIR/torch.json (PyTorch's numbers per case) and OUTDIR/comparison.md (ours beside
PyTorch, then every case of ours).

Exit status: 0 when every compared case agrees within its tolerance (1e-3; 16-bit attention
its own), 1 when one differs
by more or PyTorch failed on it (the files are written either way), 2 on a usage
error such as asking for cuda where there is none.

Needs only PyTorch (1.13 or later; numpy is not used). Scaled-dot-product attention
is used where the installed PyTorch has it (2.0+), else the explicit math form.
"""

import argparse
import copy
import json
import math
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

# A case whose output differs from PyTorch's by more than this (relative to
# max(1, |PyTorch's value|)) counts as a mismatch and makes the exit status 1.
TOLERANCE = 1e-3

# 16-bit attention: our kernel rounds the softmax weights to 16 bits before P·V (relative error u = 2^-9 for bf16, 2^-12
# for f16), which moves an output by up to u·max|v| (|v| ≤ 1 here); twice that is allowed, as in TensorCoreAttentionTests.
SIXTEEN_BIT_ATTENTION_TOLERANCE = {"bf16": 2 ** -8, "f16": 2 ** -11}
# The encoder layer in half precision: 2u per rounded product stage, 4 stages (projections, attention, output projection,
# feed-forward), twice for terms up to twice the output's size — the budget ModelTests uses for whole models.
SIXTEEN_BIT_ENCODER_LAYER_TOLERANCE = {"bf16": 16 * 2 ** -9, "f16": 16 * 2 ** -12}
# A BERT encoder in half precision, the same budget over its six layers of four product stages (BertCase.CheckTolerance).
SIXTEEN_BIT_BERT_TOLERANCE = {"bf16": 2 * 2 ** -9 * 4 * 6 * 2, "f16": 2 * 2 ** -12 * 4 * 6 * 2}


# ---------------------------------------------------------------------------
# safetensors, read by hand so that the GPU machine needs nothing but torch
# ---------------------------------------------------------------------------

def load_safetensors(path, device):
    """Return {name: F32 tensor on device} from a safetensors file.

    Layout: u64 little-endian header length, JSON header
    {name: {dtype, shape, data_offsets: [begin, end]}} (plus an optional
    "__metadata__"), then the data; offsets count from the end of the header.
    """
    data = Path(path).read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{path}: tensor '{name}' is {info['dtype']}; only F32 is supported")
        shape = info["shape"]
        begin, end = info["data_offsets"]
        count = math.prod(shape)
        if end - begin != 4 * count or base + end > len(data):
            raise ValueError(f"{path}: tensor '{name}' has {end - begin} bytes at "
                             f"[{begin}, {end}) but shape {shape} needs {4 * count}")
        # Copying the slice into a fresh bytearray gives a writable buffer (no
        # frombuffer warning) whose start is aligned, whatever the header length.
        # frombuffer refuses an empty buffer, hence the zero-element branch.
        raw = bytearray(data[base + begin:base + end])
        flat = torch.frombuffer(raw, dtype=torch.float32) if count else torch.empty(0)
        tensors[name] = flat.reshape(shape).to(device)
    return tensors


def expect_shape(tensors, name, shape):
    """Fetch a tensor and insist on its shape, so a wrong file fails with a clear message."""
    if name not in tensors:
        raise ValueError(f"tensor '{name}' is missing (have: {', '.join(sorted(tensors))})")
    t = tensors[name]
    if list(t.shape) != list(shape):
        raise ValueError(f"tensor '{name}' has shape {list(t.shape)}, expected {list(shape)}")
    return t


# ---------------------------------------------------------------------------
# The problems: each returns (kernel label, the timed callable producing PyTorch's output,
# our output, callable for the unfused form or None, callable for the output to compare
# with ours when it is not the timed one's, or None)
# ---------------------------------------------------------------------------

def matmul_problem(p, t):
    m, n, k = p["m"], p["n"], p["k"]
    a = expect_shape(t, "a", [m, k])
    ours = expect_shape(t, "output", [m, n])
    bias = expect_shape(t, "bias", [n]) if p["bias"] else None
    if p["transposeB"]:
        # b is a Linear weight [n, k]: F.linear is what PyTorch itself calls for a·bᵀ + bias.
        b = expect_shape(t, "b", [n, k])
        label, product = "linear", (lambda x, w, c: F.linear(x, w, c))
    else:
        b = expect_shape(t, "b", [k, n])
        label, product = ("addmm", lambda x, w, c: torch.addmm(c, x, w)) if bias is not None else ("matmul", lambda x, w, c: torch.matmul(x, w))
    sixteen_bit = {"bf16": torch.bfloat16, "f16": torch.float16}.get(p.get("dtype", "f32"))
    if sixteen_bit is None:
        return label, (lambda: product(a, b, bias)), ours, None, None
    # 16-bit operands (saved as their exact float values): our C is fp32, accumulated in fp32, so it is compared with
    # PyTorch's fp32 product of the same values; the time is PyTorch's own 16-bit GEMM (fp32 accumulate, 16-bit output).
    a16, b16 = a.to(sixteen_bit), b.to(sixteen_bit)
    bias16 = bias.to(sixteen_bit) if bias is not None else None
    return f"{label} {p['dtype']}", (lambda: product(a16, b16, bias16)), ours, None, (lambda: product(a, b, bias))


def attention_problem(p, t):
    shape = [p["batch"], p["heads"], p["length"], p["headDim"]]
    q, k, v = (expect_shape(t, name, shape) for name in ("q", "k", "v"))
    ours = expect_shape(t, "output", shape)
    causal = p["causal"]
    scale = 1.0 / math.sqrt(p["headDim"])
    length = p["length"]
    # Built once per case, outside the timed call: the mask is part of the problem,
    # not work that either implementation should be charged for.
    mask = torch.ones(length, length, dtype=torch.bool, device=q.device).triu(1) if causal else None

    def unfused():
        # softmax(q·kᵀ/√d + mask)·v, one materialised [B,H,L,L] score matrix;
        # in-place scale and mask so only the scores and the probabilities are held.
        scores = torch.matmul(q, k.transpose(-2, -1)).mul_(scale)
        if mask is not None:
            scores.masked_fill_(mask, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)

    if p.get("normalizer", "softmax") == "relu":
        # No PyTorch kernel has the ReLU normaliser: ReLU(score) divided by the visible keys, composed from its ops.
        visible = torch.full((length, 1), float(length), device=q.device) if mask is None else \
            (~mask).sum(-1, keepdim=True).to(q.dtype)

        def relu_normalised():
            scores = torch.matmul(q, k.transpose(-2, -1)).mul_(scale)
            if mask is not None:
                scores.masked_fill_(mask, 0.0)
            return torch.matmul(torch.relu_(scores).div_(visible), v)
        return "relu (composed)", relu_normalised, ours, None, None

    sixteen_bit = {"bf16": torch.bfloat16, "f16": torch.float16}.get(p.get("dtype", "f32"))
    if sixteen_bit is not None:
        # Q, K, V saved as their exact 16-bit values, our output fp32: checked against fp32 attention of the same values,
        # timed against PyTorch's own 16-bit attention (SDPA's default choice; compare_case also forces FLASH_ATTENTION).
        q16, k16, v16 = q.to(sixteen_bit), k.to(sixteen_bit), v.to(sixteen_bit)
        if hasattr(F, "scaled_dot_product_attention"):
            return ("sdpa", (lambda: F.scaled_dot_product_attention(q16, k16, v16, is_causal=causal)), ours, None,
                    lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))

        def half_unfused():
            scores = torch.matmul(q16, k16.transpose(-2, -1)).mul_(scale)
            if mask is not None:
                scores.masked_fill_(mask, float("-inf"))
            return torch.matmul(torch.softmax(scores, dim=-1), v16)
        return "math", half_unfused, ours, None, unfused

    # PyTorch runs its best whichever of our kernels (fused or not) ran.
    if hasattr(F, "scaled_dot_product_attention"):
        return "sdpa", (lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)), ours, unfused, None
    return "math", unfused, ours, unfused, None


def additive_attention_problem(p, t):
    """wᵀ·tanh(q·W_q + k·W_k) per (query, key), masked, normalised (softmax or ReLU / visible keys), times v. PyTorch has
    no additive attention kernel: this is the plain composition, with its [B, H, L, L, d_a] broadcast done in key chunks
    so that it fits in memory."""
    width, length = p["width"], p["length"]
    shape = [p["batch"], p["heads"], length, width]
    q, k, v = (expect_shape(t, name, shape) for name in ("q", "k", "v"))
    wq, wk = expect_shape(t, "queryProjection", [width, width]), expect_shape(t, "keyProjection", [width, width])
    w = expect_shape(t, "scoreVector", [width])
    ours = expect_shape(t, "output", shape)
    mask = torch.ones(length, length, dtype=torch.bool, device=q.device).triu(1) if p["causal"] else None
    relu = p.get("normalizer", "softmax") == "relu"

    def composed():
        projected_q, projected_k = torch.matmul(q, wq), torch.matmul(k, wk)
        chunk = max(1, (1 << 27) // (q.shape[0] * q.shape[1] * length * width))
        scores = torch.cat([torch.tanh(projected_q.unsqueeze(-2) + projected_k[..., j:j + chunk, :].unsqueeze(-3)).matmul(w)
                            for j in range(0, length, chunk)], dim=-1)
        if relu:
            if mask is not None:
                scores.masked_fill_(mask, 0.0)
            visible = (length if mask is None else (~mask).sum(-1, keepdim=True).to(q.dtype))
            return torch.matmul(torch.relu_(scores).div_(visible), v)
        if mask is not None:
            scores.masked_fill_(mask, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)
    return "composed", composed, ours, None, None


def encoder_layer_problem(p, t):
    d, length, batch = p["dModel"], p["length"], p["batch"]
    x = expect_shape(t, "x", [batch, length, d])
    ours = expect_shape(t, "output", [batch, length, d])
    layer = torch.nn.TransformerEncoderLayer(
        d, p["heads"], p["dFeedForward"], dropout=0.0, activation=p["activation"],
        batch_first=True, norm_first=p["normFirst"], layer_norm_eps=p["layerNormEpsilon"],
        device=x.device)
    layer.eval()
    weights = {name: tensor for name, tensor in t.items() if name not in ("x", "output")}
    layer.load_state_dict(weights, strict=True)
    sixteen_bit = {"bf16": torch.bfloat16, "f16": torch.float16}.get(p.get("dtype", "f32"))
    if sixteen_bit is not None:
        # Ours in half precision (Linear weights and product operands rounded, fp32 activations): checked against the fp32
        # layer, timed against PyTorch's layer and input converted to the same 16-bit format.
        half_layer = copy.deepcopy(layer).to(sixteen_bit)
        half_x = x.to(sixteen_bit)
        return f"TransformerEncoderLayer {p['dtype']}", (lambda: half_layer(half_x)), ours, None, (lambda: layer(x))
    # eval + inference_mode (set by the caller) lets PyTorch take its fast path.
    return "TransformerEncoderLayer", (lambda: layer(x)), ours, None, None


def composed_bert(w, p, ids, mask):
    """BERT's encoder written out in PyTorch ops, for a machine without transformers (the stand-in rehearsal)."""
    batch, length, d, heads = ids.shape[0], ids.shape[1], p["hiddenSize"], p["heads"]
    head_dim, eps = d // heads, p["layerNormEpsilon"]
    approximate = "none" if p["hiddenAct"] == "gelu" else "tanh"

    def norm(x, name):
        return F.layer_norm(x, (d,), w[name + ".weight"], w[name + ".bias"], eps)

    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0]
         + w["embeddings.position_embeddings.weight"][:length])
    x = norm(x, "embeddings.LayerNorm")
    visible = (mask > 0)[:, None, None, :]
    for i in range(p["layers"]):
        pre = f"encoder.layer.{i}."

        def dense(x, name):
            return F.linear(x, w[pre + name + ".weight"], w[pre + name + ".bias"])

        def split(x):
            return x.view(batch, length, heads, head_dim).transpose(1, 2)

        q, k, v = (split(dense(x, f"attention.self.{part}")) for part in ("query", "key", "value"))
        scores = (q @ k.transpose(-1, -2) / math.sqrt(head_dim)).masked_fill(~visible, float("-inf"))
        attended = (torch.softmax(scores.float(), -1).to(v.dtype) @ v).transpose(1, 2).reshape(batch, length, d)
        x = norm(x + dense(attended, "attention.output.dense"), pre + "attention.output.LayerNorm")
        x = norm(x + dense(F.gelu(dense(x, "intermediate.dense"), approximate=approximate), "output.dense"), pre + "output.LayerNorm")
    return x


def bert_problem(p, t):
    batch, length, d = p["batch"], p["length"], p["hiddenSize"]
    ids = expect_shape(t, "input_ids", [batch, length]).long()
    mask = expect_shape(t, "attention_mask", [batch, length])
    real = mask.reshape(-1) > 0
    ours = expect_shape(t, "output", [1, int(real.sum().item()), d])
    weights = {name: tensor for name, tensor in t.items() if name not in ("input_ids", "attention_mask", "output")}
    try:
        import transformers
    except ImportError:
        transformers = None
    if transformers is not None:
        config = transformers.BertConfig(
            vocab_size=p["vocabulary"], hidden_size=d, num_hidden_layers=p["layers"], num_attention_heads=p["heads"],
            intermediate_size=p["intermediateSize"], hidden_act=p["hiddenAct"], max_position_embeddings=p["maxPositions"],
            type_vocab_size=p["typeVocabulary"], layer_norm_eps=p["layerNormEpsilon"], hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0)
        model = transformers.BertModel(config, add_pooling_layer=False).to(ids.device).eval()
        model.load_state_dict(weights, strict=True)
        label = f"transformers {transformers.__version__} BertModel"
        run = lambda m, w: m(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    else:
        model = weights
        label = "BERT composed in PyTorch ops (no transformers here)"
        run = lambda m, w: composed_bert(w, p, ids, mask)

    def packed(hidden):
        # Ours is packed: the real tokens of every sequence, one after another.
        return hidden.reshape(batch * length, d)[real].unsqueeze(0).float()

    fp32 = lambda: packed(run(model, weights))
    sixteen_bit = {"bf16": torch.bfloat16, "f16": torch.float16}.get(p.get("dtype", "f32"))
    if sixteen_bit is None:
        return label, (lambda: run(model, weights)), ours, None, fp32
    # Ours in half precision (Linear weights and product operands rounded, fp32 activations): checked against the fp32
    # model, timed against PyTorch's model converted to the same 16-bit format.
    half_weights = {name: tensor.to(sixteen_bit) for name, tensor in weights.items()}
    half_model = copy.deepcopy(model).to(sixteen_bit) if transformers is not None else half_weights
    return f"{label} {p['dtype']}", (lambda: run(half_model, half_weights)), ours, None, fp32


PROBLEMS = {
    "matmul": matmul_problem,
    "attention": attention_problem,
    "additiveAttention": additive_attention_problem,
    "encoderLayer": encoder_layer_problem,
    "bert": bert_problem,
}


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------

def mean_ms(f, seconds, sync):
    """Mean milliseconds per call of f, over at least `seconds` and at least 3 calls.

    Calls are issued in doubling batches with one synchronisation per batch, so the
    synchronisation latency does not inflate the time of small kernels.
    """
    calls, batch = 0, 1
    sync()
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            f()
        sync()
        calls += batch
        elapsed = time.perf_counter() - start
        if calls >= 3 and elapsed >= seconds:
            return elapsed / calls * 1e3
        batch = calls


def cuda_scratch_bytes(f):
    """Bytes allocated during f beyond what was held before and the output it returns."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    out = f()
    torch.cuda.synchronize()
    scratch = torch.cuda.max_memory_allocated() - before - out.numel() * out.element_size()
    # The allocator rounds the output's block up, never down, so this is >= 0;
    # the clamp only guards the arithmetic.
    return max(0, scratch)


def max_rel_diff(ours, theirs):
    if ours.shape != theirs.shape:
        raise ValueError(f"output shapes differ: ours {list(ours.shape)}, PyTorch {list(theirs.shape)}")
    theirs64 = theirs.double()
    diff = ((ours.double() - theirs64).abs() / theirs64.abs().clamp_min(1.0)).max().item()
    if not math.isfinite(diff):
        # NaN would compare False against the tolerance and pass silently.
        raise ValueError("non-finite difference (NaN or Inf in one of the outputs)")
    return diff


RECORD_KEYS = ("name", "torchKernel", "torchMs", "torchThroughput", "throughputUnit", "maxRelDiff", "tolerance",
               "torchScratchBytes", "torchUnfusedScratchBytes", "torchFlashMs", "error")


def sdpa_backend(f):
    """Which SDPA implementation PyTorch ran for f, by the CUDA kernels a profiled call launched ("unknown" if the
    profiler cannot run: naming the backend must not cost the case its figures)."""
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            f()
            torch.cuda.synchronize()
        names = " ".join(e.key.lower() for e in prof.key_averages())
    except Exception:  # noqa: BLE001 — any profiler failure only loses the label
        return "unknown"
    for needle, backend in (("flash", "flash"), ("cudnn", "cudnn"), ("fmha", "efficient"), ("efficient", "efficient")):
        if needle in names:
            return backend
    return "math"


def forced_flash_ms(f, seconds, sync):
    """f's mean time with SDPA restricted to its FLASH_ATTENTION backend (FlashAttention-2), or None where unavailable."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            f()
            sync()
            return mean_ms(f, seconds, sync)
    except (ImportError, RuntimeError):
        return None


def compare_case(case, tensor_path, device, seconds):
    """PyTorch's result for one case: the torch.json record less name and error."""
    problem = case["problem"]
    tensors = load_safetensors(tensor_path, device)
    # f: the timed call; check: what our output is compared with, when that is not f's output (None: it is).
    kernel, f, ours, unfused, check = PROBLEMS[problem["op"]](problem, tensors)
    on_cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if on_cuda else (lambda: None)

    out = f()  # the warm-up call; its output is the one compared unless the problem names another
    sync()
    if check is not None:
        out = check()
    diff = max_rel_diff(ours, out)
    del out
    tolerance = {"attention": SIXTEEN_BIT_ATTENTION_TOLERANCE, "encoderLayer": SIXTEEN_BIT_ENCODER_LAYER_TOLERANCE,
                 "bert": SIXTEEN_BIT_BERT_TOLERANCE}.get(
        problem["op"], {}).get(problem.get("dtype"))
    flash_ms = None
    if on_cuda and tolerance is not None and problem["op"] == "attention":
        kernel = f"sdpa: {sdpa_backend(f)}"
        flash_ms = forced_flash_ms(f, seconds, sync)

    scratch = unfused_scratch = None
    if on_cuda:
        scratch = cuda_scratch_bytes(f)
        if unfused is not None:
            unfused_scratch = cuda_scratch_bytes(unfused)

    ms = mean_ms(f, seconds, sync)
    return {
        "torchKernel": kernel,
        "torchMs": ms,
        # The unit ours was reported in: GFLOP/s and GB/s count work in units of 1e9, tokens/s counts tokens.
        "torchThroughput": case["work"] / (ms / 1e3) / (1 if case["throughputUnit"] == "tokens/s" else 1e9),
        "throughputUnit": case["throughputUnit"],
        "maxRelDiff": diff,
        "tolerance": tolerance if tolerance is not None else TOLERANCE,
        "torchFlashMs": flash_ms,
        "torchScratchBytes": scratch,
        "torchUnfusedScratchBytes": unfused_scratch,
    }


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

DASH = "—"


def human_bytes(n):
    if n is None:
        return DASH
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def fmt_ms(ms):
    return DASH if ms is None else f"{ms:.4g}"


def fmt_rate(value, unit):
    return DASH if value is None else f"{value:.4g} {unit}"


def cell(text):
    """Keep free text (error messages) from breaking a markdown table row."""
    return str(text).replace("|", "/").replace("\n", " ")


def write_outputs(out_dir, meta, results, records):
    (out_dir / "torch.json").write_text(json.dumps({**meta, "cases": records}, indent=2) + "\n")

    lines = [
        "# Ours beside PyTorch",
        "",
        f"- Date: {meta['date']}",
        f"- PyTorch: {meta['torchVersion']} on {meta['torchDevice']}",
        "- Precision: F32, TF32 off",
        f"- Ours: {results.get('device', DASH)}",
        f"- PyTorch timing: one warm-up call, then the mean of at least 3 calls over at least {meta['seconds']} s",
        "- Speed ours/PyTorch = PyTorch ms / our ms: above 1× ours is faster.",
        f"- Max rel. diff = max |ours − PyTorch| / max(1, |PyTorch|); above the tolerance ({TOLERANCE:g}; for 16-bit attention "
        "2u, u the format's unit roundoff, against fp32 SDPA of the same values) fails.",
        "",
        "## Ours beside PyTorch",
        "",
        "| case | ours ms | ours rate | PyTorch (kernel) ms | PyTorch rate | speed ours/PyTorch "
        "| max rel. diff (tolerance) | our scratch | PyTorch scratch (fused / unfused) | speed ours/SDPA FLASH_ATTENTION |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cases_by_name = {c["name"]: c for c in results["cases"]}
    for r in records:
        c = cases_by_name[r["name"]]
        unit = c["throughputUnit"]
        ours = [fmt_ms(c["ms"]), fmt_rate(c["throughput"], unit)]
        our_scratch = human_bytes(c.get("scratchBytes"))
        if r["error"] is not None:
            lines.append(f"| {r['name']} | {' | '.join(ours)} | error: {cell(r['error'])} "
                         f"| {DASH} | {DASH} | {DASH} | {our_scratch} | {DASH} | {DASH} |")
            continue
        speed = f"{r['torchMs'] / c['ms']:.2f}×"
        diff = f"{r['maxRelDiff']:.2e} ({r['tolerance']:.0e})" + (" **FAIL**" if r["maxRelDiff"] > r["tolerance"] else "")
        flash = f"{r['torchFlashMs'] / c['ms']:.2f}×" if r.get("torchFlashMs") else DASH
        theirs_scratch = human_bytes(r["torchScratchBytes"])
        if r["torchUnfusedScratchBytes"] is not None:
            theirs_scratch += " / " + human_bytes(r["torchUnfusedScratchBytes"])
        lines.append(
            f"| {r['name']} | {' | '.join(ours)} | {fmt_ms(r['torchMs'])} ({r['torchKernel']}) "
            f"| {fmt_rate(r['torchThroughput'], unit)} | {speed} | {diff} | {our_scratch} | {theirs_scratch} | {flash} |")

    lines += [
        "",
        "## Every case (ours)",
        "",
        "| name | check | ms | rate | peak | scratch |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for c in results["cases"]:
        error = c.get("checkError")
        check = ("pass" if c["passed"] else "FAIL") + ("" if error is None else f" ({error:.1e})")
        lines.append(f"| {c['name']} | {check} | {fmt_ms(c['ms'])} | {fmt_rate(c['throughput'], c['throughputUnit'])} "
                     f"| {human_bytes(c.get('peakBytes'))} | {human_bytes(c.get('scratchBytes'))} |")
    (out_dir / "comparison.md").write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True, type=Path, help="results.json from our benchmark CLI")
    parser.add_argument("--out", required=True, type=Path, help="folder for torch.json and comparison.md")
    parser.add_argument("--device", choices=("cuda", "cpu"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=0.5, help="minimum timed seconds per case")
    args = parser.parse_args()

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"torch_compare: --device cuda asked, but torch {torch.__version__} sees no CUDA device "
              f"(torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    device = torch.device(args.device)

    # Plain F32 everywhere, to match our F32 kernels: no TF32 in matmuls or convolutions.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if hasattr(torch, "set_float32_matmul_precision"):
        torch.set_float32_matmul_precision("highest")

    results = json.loads(args.results.read_text())
    base_dir = args.results.parent
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torchVersion": torch.__version__,
        "torchDevice": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else f"CPU ({platform.processor() or platform.machine()})"),
        "tf32": False,
        "seconds": args.seconds,
        "oursDevice": results.get("device"),
    }

    records = []
    failed = False
    cases = results["cases"]
    for i, case in enumerate(cases, 1):
        prefix = f"[{i}/{len(cases)}] {case['name']}:"
        op = case.get("problem", {}).get("op")
        if not case["passed"] or case.get("tensors") is None or op not in PROBLEMS:
            why = ("our check failed" if not case["passed"]
                   else "no tensors" if case.get("tensors") is None else f"op '{op}' not compared")
            print(f"{prefix} listed only ({why})", flush=True)
            continue

        # Every record has every key, so a failed case reads like the others with nulls.
        record = dict.fromkeys(RECORD_KEYS)
        record["name"] = case["name"]
        try:
            with torch.inference_mode():
                record.update(compare_case(case, base_dir / case["tensors"], device, args.seconds))
        except Exception as e:  # one broken case must not stop the rest of the run
            record["error"] = f"{type(e).__name__}: {e}"
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the largest cases hold ~70 MB per tensor

        if record["error"] is not None:
            failed = True
            print(f"{prefix} PyTorch FAILED: {record['error']}", flush=True)
        else:
            bad = record["maxRelDiff"] > record["tolerance"]
            failed |= bad
            print(f"{prefix} PyTorch {record['torchKernel']} {record['torchMs']:.4g} ms "
                  f"({record['torchThroughput']:.4g} {record['throughputUnit']}), ours {fmt_ms(case['ms'])} ms, "
                  f"max rel diff {record['maxRelDiff']:.2e}{' MISMATCH' if bad else ''}", flush=True)
        records.append(record)
        # Rewritten after every case so a run cut short still leaves its results.
        write_outputs(args.out, meta, results, records)

    write_outputs(args.out, meta, results, records)
    print(f"torch_compare: {len(records)} compared, {'FAILED' if failed else 'all within tolerance'}; "
          f"wrote {args.out / 'torch.json'} and {args.out / 'comparison.md'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
