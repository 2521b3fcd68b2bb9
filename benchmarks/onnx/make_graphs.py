#!/usr/bin/env python3
"""Builds the ONNX graphs that OrtComparisonBenchmarks runs on ONNX Runtime's CPU provider.

Run from anywhere with a Python that has the `onnx` package (Debian's python3-onnx 1.12 is enough; on the dev VM
that is /usr/bin/python3, not pyenv's python3):

    python3 benchmarks/onnx/make_graphs.py

and commit what it writes beside this script. The graphs hold no weight values, so the files stay a few KB:

* Operands of the op benchmarks (matmul A and B; attention Q, K, V) are graph inputs, as they are for our ops.
* Model weights are graph *initializers* whose data is external (`data_location = EXTERNAL`), in
  `<set>.weights.bin` at the offsets listed in `<set>.weights.json`. The benchmark writes that file in its setup
  from the very arrays it hands our library (random ones, or the sample's safetensors), beside a copy of the
  graph, and ONNX Runtime loads it as ordinary constant initializers: it may constant-fold and pre-pack them,
  as it does for any exported model. (Weights declared as graph inputs and supplied with
  SessionOptions.AddInitializer do not work: ORT 1.31 ignores AddInitializer for names that are not initializers
  of the graph and then fails with "Missing Input"; feeding weights as inputs would make them non-constant,
  which forbids pre-packing and folding and would handicap ORT.)

Attention is ONNX Runtime's contrib op com.microsoft.MultiHeadAttention (query/key/value [B, L, H·d], num_heads):
its CPU kernel has an MLAS flash-attention path when there is no mask, and `unidirectional = 1` gives the causal
mask (ORT then takes its unfused path: GEMM, masked softmax, GEMM over all L² scores). The alternatives, timed with
ORT 1.31.1 on the 2-core dev VM (B=1, H=8, d=64; ms per call):

    L     mask     MultiHeadAttention   ONNX Attention (opset 23)   MatMul→Add→Softmax→MatMul
    256   none     0.43                 0.36                        0.40
    1024  none     6.4                  7.1                         9.8
    4096  none     101                  132                         2029
    1024  causal   9.5                  9.2                         9.9
    4096  causal   163                  182                         764

MultiHeadAttention is the fastest at long sequences, where the time is, so every graph uses it; at L=256 the
opset-23 op was ~0.07 ms (15%) faster, and at L=1024 causal the three are within noise (the VM's two cores are shared,
so single timings wander by 10-20%). In the encoder layer, com.microsoft.Attention (QKV projection fused in) measured within 2% of
Gemm→Split→MultiHeadAttention, and com.microsoft.SkipLayerNormalization ~10% slower than Add + LayerNormalization,
so those stay as written. Linear layers are Gemm(transB=1), which ORT pre-packs (and fuses with a following Relu).
"""

import json
import math
import os

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "..", "samples", "reverse-digits")
OPSET = 17  # LayerNormalization is in opset 17
PRODUCER = "GpuAttention benchmarks/onnx/make_graphs.py"
FLOAT = TensorProto.FLOAT


def value(name, shape, elem=FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def save(graph, file_name, doc):
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
        producer_name=PRODUCER,
        doc_string=doc,
    )
    model.ir_version = 8
    with open(os.path.join(HERE, file_name), "wb") as f:
        f.write(model.SerializeToString())  # as is: the external data is the benchmark's to write


class Weights:
    """Model weights as external-data initializers, laid out one after another in `<set>.weights.bin`."""

    def __init__(self, set_name):
        self.set_name = set_name
        self.bin = set_name + ".weights.bin"
        self.tensors = []  # (name, shape, offset)
        self.offset = 0

    def add(self, name, shape):
        self.tensors.append((name, list(shape), self.offset))
        self.offset += 4 * math.prod(shape)

    def initializers(self, names):
        """External-data TensorProtos for `names` (a graph may use a subset of the set)."""
        protos = []
        for name, shape, offset in self.tensors:
            if name not in names:
                continue
            t = TensorProto()
            t.name = name
            t.data_type = FLOAT
            t.dims.extend(shape)
            t.data_location = TensorProto.EXTERNAL
            for key, val in (("location", self.bin), ("offset", str(offset)), ("length", str(4 * math.prod(shape)))):
                entry = t.external_data.add()
                entry.key = key
                entry.value = val
            protos.append(t)
        return protos

    def write_manifest(self):
        manifest = {
            "file": self.bin,
            "bytes": self.offset,
            "tensors": [{"name": n, "shape": s, "offset": o} for n, s, o in self.tensors],
        }
        with open(os.path.join(HERE, self.set_name + ".weights.json"), "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")


class Builder:
    """Nodes of one graph with unique intermediate names."""

    def __init__(self):
        self.nodes = []
        self.constants = []
        self.used = set()  # weight names the graph reads
        self.count = 0

    def tmp(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def op(self, op_type, inputs, hint=None, outputs=1, domain=None, **attrs):
        names = [self.tmp(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, domain=domain, **attrs))
        return names[0] if outputs == 1 else names

    def w(self, name):
        self.used.add(name)
        return name

    def const(self, name, elem, dims, vals):
        self.constants.append(helper.make_tensor(name, elem, dims, vals))
        return name

    # -- layers, PyTorch semantics ------------------------------------------------------------------------------

    def linear(self, x2d, prefix, activation=None, weight=None, bias=None):
        """x·Wᵀ + b on rows [rows, in], W in PyTorch's [out, in] layout (Gemm transB=1; ORT fuses a following Relu)."""
        y = self.op("Gemm", [x2d, weight or self.w(prefix + ".weight"), bias or self.w(prefix + ".bias")], "linear", transB=1)
        return self.op("Relu", [y]) if activation == "relu" else y

    def layer_norm(self, x2d, prefix, eps):
        return self.op("LayerNormalization", [x2d, self.w(prefix + ".weight"), self.w(prefix + ".bias")], "norm",
                       axis=-1, epsilon=eps)

    def add_norm(self, x2d, fx2d, prefix, eps):
        """Post-LN residual: LayerNorm(x + f(x)) as Add + LayerNormalization. (ORT's fused
        com.microsoft.SkipLayerNormalization in its place made the d_model 512 layer ~10% slower with ORT 1.31.1.)"""
        return self.layer_norm(self.op("Add", [x2d, fx2d], "residual"), prefix, eps)

    def mha(self, q_rows, q_shape, kv_rows, kv_shape, prefix, d, heads, causal, same_source):
        """nn.MultiheadAttention with in_proj_weight [3d, d] (rows q, k, v), in_proj_bias [3d] and out_proj.

        q_rows / kv_rows: [rows, d]; q_shape / kv_shape: the [B, L, d] shape tensors to view them as for
        com.microsoft.MultiHeadAttention (query/key/value [B, L, d], num_heads; scale defaults to 1/sqrt(d/heads)).
        """
        w, b = self.w(prefix + "in_proj_weight"), self.w(prefix + "in_proj_bias")
        if same_source:  # self-attention: one [rows, 3d] projection, split into q, k, v
            qkv = self.linear(q_rows, None, weight=w, bias=b)
            q, k, v = self.op("Split", [qkv, self.split3(d)], "qkv", outputs=3, axis=1)
        else:  # cross-attention: q from the target rows, k and v from the memory rows (ORT folds the weight splits)
            wq, wkv = self.op("Split", [w, self.split2(d)], "w_split", outputs=2, axis=0)
            bq, bkv = self.op("Split", [b, self.split2(d)], "b_split", outputs=2, axis=0)
            q = self.linear(q_rows, None, weight=wq, bias=bq)
            kv = self.linear(kv_rows, None, weight=wkv, bias=bkv)
            k, v = self.op("Split", [kv, self.split_d(d)], "kv", outputs=2, axis=1)
        q3 = self.op("Reshape", [q, q_shape], "q")
        k3 = self.op("Reshape", [k, kv_shape], "k")
        v3 = self.op("Reshape", [v, kv_shape], "v")
        attended = self.op("MultiHeadAttention", [q3, k3, v3], "attention", domain="com.microsoft",
                           num_heads=heads, unidirectional=1 if causal else 0)
        rows = self.op("Reshape", [attended, self.rows_shape(d)], "attended")
        return self.linear(rows, prefix + "out_proj")

    def rows_shape(self, d):
        name = f"rows_shape_{d}"
        if name not in {c.name for c in self.constants}:
            self.const(name, TensorProto.INT64, [2], [-1, d])
        return name

    def split3(self, d):
        name = f"split_{d}x3"
        if name not in {c.name for c in self.constants}:
            self.const(name, TensorProto.INT64, [3], [d, d, d])
        return name

    def split2(self, d):
        name = f"split_{d}_{2 * d}"
        if name not in {c.name for c in self.constants}:
            self.const(name, TensorProto.INT64, [2], [d, 2 * d])
        return name

    def split_d(self, d):
        name = f"split_{d}x2"
        if name not in {c.name for c in self.constants}:
            self.const(name, TensorProto.INT64, [2], [d, d])
        return name

    def encoder_layer(self, rows, shape, prefix, d, heads, eps, activation):
        """TransformerEncoderLayer, post-LN: x = norm1(x + SA(x)); x = norm2(x + FF(x))."""
        sa = self.mha(rows, shape, rows, shape, prefix + "self_attn.", d, heads, causal=False, same_source=True)
        x = self.add_norm(rows, sa, prefix + "norm1", eps)
        ff = self.linear(self.linear(x, prefix + "linear1", activation), prefix + "linear2")
        return self.add_norm(x, ff, prefix + "norm2", eps)

    def decoder_layer(self, rows, shape, memory_rows, memory_shape, prefix, d, heads, eps, activation):
        """TransformerDecoderLayer, post-LN: causal self-attention, cross-attention over the memory, feed-forward."""
        sa = self.mha(rows, shape, rows, shape, prefix + "self_attn.", d, heads, causal=True, same_source=True)
        x = self.add_norm(rows, sa, prefix + "norm1", eps)
        ca = self.mha(x, shape, memory_rows, memory_shape, prefix + "multihead_attn.", d, heads, causal=False,
                      same_source=False)
        x = self.add_norm(x, ca, prefix + "norm2", eps)
        ff = self.linear(self.linear(x, prefix + "linear1", activation), prefix + "linear2")
        return self.add_norm(x, ff, prefix + "norm3", eps)

    def embed(self, tokens, table, d):
        """table[tokens]·sqrt(d) + the positional encoding rows 0..L-1 (a [max_len, d] weight the benchmark computes)."""
        x = self.op("Gather", [self.w(table), tokens], "embedded", axis=0)  # [B, L, d]
        self.const(f"{table}.scale", FLOAT, [], [math.sqrt(d)])
        x = self.op("Mul", [x, f"{table}.scale"], "scaled")
        length = self.op("Shape", [tokens], "length", start=1, end=2)
        zero = self.const(f"{table}.zero", TensorProto.INT64, [1], [0])
        pe = self.op("Slice", [self.w("positional_encoding"), zero, length, zero], "pe")  # rows 0..L-1
        return self.op("Add", [x, pe], "input")

    def graph(self, name, inputs, outputs, weights=None, doc=""):
        initializers = list(self.constants) + (weights.initializers(self.used) if weights else [])
        missing = self.used - {t.name for t in initializers}
        assert not missing, f"weights not declared: {sorted(missing)}"
        return helper.make_graph(self.nodes, name, inputs, outputs, initializer=initializers, doc_string=doc)


def matmul():
    g = Builder()
    g.nodes.append(helper.make_node("MatMul", ["A", "B"], ["C"]))
    save(g.graph("matmul", [value("A", ["M", "K"]), value("B", ["K", "N"])], [value("C", ["M", "N"])]),
         "matmul.onnx", "C = A·B, both operands graph inputs (as for MatMul.Multiply).")


def attention(causal, heads=8, head_dim=64):
    d = heads * head_dim
    g = Builder()
    g.nodes.append(helper.make_node("MultiHeadAttention", ["query", "key", "value"], ["output"], domain="com.microsoft",
                                    num_heads=heads, unidirectional=1 if causal else 0))
    inputs = [value(n, ["B", "L", d]) for n in ("query", "key", "value")]
    name = "attention_causal" if causal else "attention"
    save(g.graph(name, inputs, [value("output", ["B", "L", d])]), name + ".onnx",
         f"softmax(Q·Kᵀ/sqrt({head_dim}){' + causal mask' if causal else ''})·V with com.microsoft.MultiHeadAttention, "
         f"{heads} heads of {head_dim}; Q, K, V and the output are [B, L, {d}] (heads interleaved per token).")


def layer_weights(w, prefix, d, ff, decoder=False):
    attentions = ["self_attn."] + (["multihead_attn."] if decoder else [])
    for a in attentions:
        w.add(prefix + a + "in_proj_weight", [3 * d, d])
        w.add(prefix + a + "in_proj_bias", [3 * d])
        w.add(prefix + a + "out_proj.weight", [d, d])
        w.add(prefix + a + "out_proj.bias", [d])
    w.add(prefix + "linear1.weight", [ff, d])
    w.add(prefix + "linear1.bias", [ff])
    w.add(prefix + "linear2.weight", [d, ff])
    w.add(prefix + "linear2.bias", [d])
    for n in range(1, 4 if decoder else 3):
        w.add(prefix + f"norm{n}.weight", [d])
        w.add(prefix + f"norm{n}.bias", [d])


def encoder_layer(d, heads, ff, eps=1e-5):
    """One nn.TransformerEncoderLayer (post-LN, ReLU), weights named as in its state_dict."""
    set_name = f"encoder_layer_d{d}_h{heads}_ff{ff}"
    w = Weights(set_name)
    layer_weights(w, "", d, ff)
    g = Builder()
    shape = g.op("Shape", ["x"], "x_shape")
    rows = g.op("Reshape", ["x", g.rows_shape(d)], "x_rows")
    y = g.encoder_layer(rows, shape, "", d, heads, eps, "relu")
    g.nodes.append(helper.make_node("Reshape", [y, shape], ["y"]))
    save(g.graph(set_name, [value("x", ["B", "L", d])], [value("y", ["B", "L", d])], w), set_name + ".onnx",
         f"nn.TransformerEncoderLayer(d_model={d}, nhead={heads}, dim_feedforward={ff}, relu, post-LN, eps={eps}); "
         f"weights: external data, see {set_name}.weights.json.")
    w.write_manifest()


def reverse_digits():
    """The samples/reverse-digits model as an encoder graph (source → memory) and a decoder graph (target prefix and
    memory → logits of every position: a plain export, no key/value cache)."""
    with open(os.path.join(SAMPLE, "config.json")) as f:
        c = json.load(f)
    assert c["activation"] == "relu" and not c["norm_first"] and c["final_norms"] and c["positional"] == "sinusoidal", c
    d, heads, ff, eps = c["d_model"], c["heads"], c["d_ff"], c["layer_norm_eps"]
    w = Weights("reverse_digits")
    w.add("src_embed.weight", [c["src_vocab"], d])
    w.add("tgt_embed.weight", [c["tgt_vocab"], d])
    w.add("positional_encoding", [c["max_len"], d])
    for i in range(c["encoder_layers"]):
        layer_weights(w, f"encoder.layers.{i}.", d, ff)
    for i in range(c["decoder_layers"]):
        layer_weights(w, f"decoder.layers.{i}.", d, ff, decoder=True)
    for n in ("encoder.norm", "decoder.norm"):
        w.add(n + ".weight", [d])
        w.add(n + ".bias", [d])
    w.add("generator.weight", [c["tgt_vocab"], d])
    w.add("generator.bias", [c["tgt_vocab"]])

    tokens = lambda name: value(name, ["B", "L"], TensorProto.INT64)

    g = Builder()
    x = g.embed("source", "src_embed.weight", d)
    shape = g.op("Shape", [x], "x_shape")
    rows = g.op("Reshape", [x, g.rows_shape(d)], "x_rows")
    for i in range(c["encoder_layers"]):
        rows = g.encoder_layer(rows, shape, f"encoder.layers.{i}.", d, heads, eps, "relu")
    rows = g.layer_norm(rows, "encoder.norm", eps)
    g.nodes.append(helper.make_node("Reshape", [rows, shape], ["memory"]))
    save(g.graph("reverse_digits_encoder", [tokens("source")], [value("memory", ["B", "S", d])], w),
         "reverse_digits_encoder.onnx", "samples/reverse-digits encoder: source tokens [B, S] → memory [B, S, d_model].")

    g = Builder()
    x = g.embed("target", "tgt_embed.weight", d)
    shape = g.op("Shape", [x], "x_shape")
    memory_shape = g.op("Shape", ["memory"], "memory_shape")
    rows = g.op("Reshape", [x, g.rows_shape(d)], "x_rows")
    memory_rows = g.op("Reshape", ["memory", g.rows_shape(d)], "memory_rows")
    for i in range(c["decoder_layers"]):
        rows = g.decoder_layer(rows, shape, memory_rows, memory_shape, f"decoder.layers.{i}.", d, heads, eps, "relu")
    rows = g.layer_norm(rows, "decoder.norm", eps)
    logits = g.linear(rows, "generator")
    logits_shape = g.op("Concat", [g.op("Shape", ["target"], "bt"),
                                   g.const("vocab", TensorProto.INT64, [1], [c["tgt_vocab"]])], "logits_shape", axis=0)
    g.nodes.append(helper.make_node("Reshape", [logits, logits_shape], ["logits"]))
    save(g.graph("reverse_digits_decoder", [tokens("target"), value("memory", ["B", "S", d])],
                 [value("logits", ["B", "L", c["tgt_vocab"]])], w),
         "reverse_digits_decoder.onnx",
         "samples/reverse-digits decoder over the whole target prefix (no cache): target tokens [B, T] and memory → "
         "logits [B, T, vocab].")
    w.write_manifest()


if __name__ == "__main__":
    matmul()
    attention(causal=False)
    attention(causal=True)
    encoder_layer(512, 8, 2048)  # the paper's base layer: the full-size benchmark
    encoder_layer(64, 4, 256)    # GPUATTENTION_BENCH_SIZES=small
    reverse_digits()
    for name in sorted(os.listdir(HERE)):
        if name.endswith((".onnx", ".json")):
            print(f"{os.path.getsize(os.path.join(HERE, name)):8d}  {name}")
