#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_gguf_header (fuzz/corpus/gguf_header): small GGUF images
(each under 4 KB) built here with the struct module: llama / mistral3 / MoE model headers with
tensors of several ggml types and tiny data, string- and array-heavy metadata, header-only files
and a few near-valid ones the reader must refuse."""
import os
import struct
import sys

# gguf_type
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR_FORMATS = {U8: "B", I8: "b", U16: "H", I16: "h", U32: "I", I32: "i", F32: "f", BOOL: "?",
                  U64: "Q", I64: "q", F64: "d"}
# ggml_type: (id, block size, bytes per block)
GGML = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20), "Q5_0": (6, 32, 22),
        "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84), "Q4_K": (12, 256, 144), "Q6_K": (14, 256, 210),
        "IQ4_NL": (20, 32, 18), "BF16": (30, 1, 2)}


def gguf_string(text):
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def value(kind, v):
    if kind == STRING:
        return gguf_string(v)
    return struct.pack("<" + SCALAR_FORMATS[kind], v)


def kv(key, kind, v):
    return gguf_string(key) + struct.pack("<I", kind) + value(kind, v)


def kv_array(key, element_kind, values):
    out = gguf_string(key) + struct.pack("<IIQ", ARRAY, element_kind, len(values))
    for v in values:
        out += value(element_kind, v)
    return out


def tensor_size(ggml_type, ne):
    _, block, type_size = GGML[ggml_type]
    count = 1
    for n in ne:
        count *= n
    assert ne[0] % block == 0
    return count // block * type_size


def gguf(pairs, tensors, version=3, alignment=32, data_pad=0):
    """pairs: encoded key/values; tensors: (name, ne, ggml type name). Tensor data is a byte
    pattern whose f16 scales stay small (every other byte is low)."""
    header = struct.pack("<IIQQ", 0x46554747, version, len(tensors), len(pairs)) + b"".join(pairs)
    offset, infos = 0, b""
    for name, ne, ggml_type in tensors:
        offset = (offset + alignment - 1) // alignment * alignment
        infos += gguf_string(name) + struct.pack("<I", len(ne)) + struct.pack("<%dq" % len(ne), *ne)
        infos += struct.pack("<IQ", GGML[ggml_type][0], offset)
        offset += tensor_size(ggml_type, ne)
    out = header + infos
    if tensors:
        out += b"\0" * (-len(out) % alignment)
        out += bytes(((i * 37) % 251 if i % 2 else i % 7) for i in range(offset + data_pad))
    return out


def model_keys(arch, dim=32, layers=1, heads=4, kv_heads=2, hidden=64, extra=()):
    p = arch + "."
    pairs = [kv("general.architecture", STRING, arch), kv("general.name", STRING, "seed"),
             kv(p + "context_length", U32, 256), kv(p + "embedding_length", U32, dim),
             kv(p + "block_count", U32, layers), kv(p + "feed_forward_length", U32, hidden),
             kv(p + "attention.head_count", U32, heads), kv(p + "attention.head_count_kv", U32, kv_heads),
             kv(p + "rope.freq_base", F32, 1000000.0), kv(p + "attention.layer_norm_rms_epsilon", F32, 1e-5),
             kv(p + "attention.key_length", U32, dim // heads), kv(p + "attention.value_length", U32, dim // heads),
             kv(p + "rope.dimension_count", U32, dim // heads), kv(p + "vocab_size", U32, 16),
             kv("general.file_type", U32, 7), kv("general.quantization_version", U32, 2)]
    return pairs + list(extra)


def llama_tensors(dim=32, vocab=8, output=True):
    tensors = [("token_embd.weight", [dim, vocab], "Q8_0"), ("output_norm.weight", [dim], "F32"),
               ("blk.0.attn_norm.weight", [dim], "F32"), ("blk.0.attn_q.weight", [dim, 8], "Q4_0"),
               ("blk.0.attn_k.weight", [dim, 4], "F16"), ("blk.0.attn_v.weight", [dim, 4], "BF16"),
               ("blk.0.attn_output.weight", [dim, 8], "Q4_1"), ("blk.0.ffn_norm.weight", [dim], "F32"),
               ("blk.0.ffn_gate.weight", [dim, 2], "Q5_0"), ("blk.0.ffn_up.weight", [dim, 2], "IQ4_NL"),
               ("blk.0.ffn_down.weight", [256, 1], "Q4_K")]
    if output:
        tensors.insert(0, ("output.weight", [dim, vocab], "Q6_K" if dim % 256 == 0 else "Q8_0"))
    return tensors


def seeds():
    out = {}
    out["llama_tensors"] = gguf(model_keys("llama"), llama_tensors())
    out["llama_tied_v2"] = gguf(model_keys("llama"), llama_tensors(output=False), version=2)
    out["mistral3_yarn_temperature"] = gguf(
        model_keys("mistral3", extra=[
            kv("mistral3.rope.scaling.type", STRING, "yarn"), kv("mistral3.rope.scaling.factor", F32, 16.0),
            kv("mistral3.rope.scaling.original_context_length", U32, 16384),
            kv("mistral3.rope.scaling.yarn_beta_fast", F32, 32.0), kv("mistral3.rope.scaling.yarn_beta_slow", F32, 1.0),
            kv("mistral3.rope.scaling.yarn_log_multiplier", F32, 1.0),
            kv("mistral3.attention.temperature_scale", F32, 0.1),
            kv("mistral3.attention.temperature_length", U32, 16384)]),
        [("token_embd.weight", [32, 16], "Q4_0"), ("output_norm.weight", [32], "F32")])
    out["moe_experts"] = gguf(
        model_keys("llama", extra=[kv("llama.expert_count", U32, 4), kv("llama.expert_used_count", U32, 2),
                                   kv("llama.expert_gating_func", U32, 1)]),
        [("token_embd.weight", [32, 16], "Q4_0"), ("output.weight", [32, 16], "Q4_0"),
         ("blk.0.ffn_gate_inp.weight", [32, 4], "F32"), ("blk.0.ffn_gate_exps.weight", [32, 4, 4], "Q4_0"),
         ("blk.0.ffn_up_exps.weight", [32, 4, 4], "Q4_0"), ("blk.0.ffn_down_exps.weight", [32, 4, 4], "Q8_0")])
    out["moe_per_expert_names"] = gguf(
        model_keys("llama", extra=[kv("llama.expert_count", U32, 2), kv("llama.expert_used_count", U32, 1)]),
        [("blk.0.ffn_gate.0.weight", [32, 4], "F16"), ("blk.0.ffn_gate.1.weight", [32, 4], "F16"),
         ("blk.0.ffn_down.1.weight", [32, 4], "BF16"), ("rope_freqs.weight", [4], "F32")])
    tokens = ["<unk>", "<s>", "</s>", "\u2581the", "\u2581a", "\u0120x", "[INST]", "\u00e9t\u00e9", "<0x00>", ""]
    out["strings_and_arrays"] = gguf(
        [kv("general.architecture", STRING, "llama"), kv("general.alignment", U32, 64),
         kv("tokenizer.ggml.model", STRING, "gpt2"), kv("tokenizer.ggml.pre", STRING, "tekken"),
         kv_array("tokenizer.ggml.tokens", STRING, tokens * 4),
         kv_array("tokenizer.ggml.scores", F32, [float(-i) for i in range(40)]),
         kv_array("tokenizer.ggml.token_type", I32, [3, 3, 3] + [1] * 37),
         kv_array("tokenizer.ggml.merges", STRING, ["\u2581 t", "h e", "\u0120 x"]),
         kv("tokenizer.ggml.add_bos_token", BOOL, True), kv("tokenizer.chat_template", STRING, "{{ x }}"),
         kv_array("t.bools", BOOL, [True, False]), kv_array("t.u64", U64, [1 << 40]), kv_array("t.i64", I64, [-1]),
         kv_array("t.f64", F64, [0.5, -0.25]), kv_array("t.u8", U8, [255]), kv_array("t.i16", I16, [-7, 7]),
         kv_array("t.u16", U16, []), kv_array("t.empty_strings", STRING, []),
         kv("t.i8", I8, -1), kv("t.u16s", U16, 65535), kv("t.i64s", I64, -(1 << 40)), kv("t.f64s", F64, 1e300)],
        [("token_embd.weight", [32, 2], "Q8_0")], alignment=64)
    out["every_scalar_type"] = gguf(
        model_keys("llama", extra=[kv("general.u8", U8, 1), kv("general.i8", I8, -2), kv("general.u16", U16, 3),
                                   kv("general.i16", I16, -4), kv("general.u32", U32, 5), kv("general.i32", I32, -6),
                                   kv("general.f32", F32, 7.5), kv("general.bool", BOOL, False),
                                   kv("general.string", STRING, "s"), kv("general.u64", U64, 9),
                                   kv("general.i64", I64, -10), kv("general.f64", F64, 11.25),
                                   kv("quantize.imatrix.file", STRING, "imatrix.dat"),
                                   kv("split.count", U16, 1)]), [])
    per_layer = [pair for pair in model_keys("llama", layers=2)
                 if b"head_count_kv" not in pair and b"feed_forward_length" not in pair]
    out["per_layer_arrays"] = gguf(
        per_layer + [kv_array("llama.attention.head_count_kv", I32, [2, 2]),
                     kv_array("llama.feed_forward_length", U32, [64, 64]),
                     kv("llama.attention.sliding_window", U32, 128)],
        [("blk.1.attn_norm.weight", [32], "F32")])
    out["header_only_llama"] = gguf(model_keys("llama") + [kv_array("tokenizer.ggml.tokens", STRING, tokens)], [])
    out["header_only_empty"] = gguf([], [])
    # Near-valid: refused by GgufModelParams (architecture) and by the reader (data cut short).
    out["refused_architecture"] = gguf(model_keys("gemma3"), [("token_embd.weight", [32, 16], "Q8_0")])
    truncated = gguf(model_keys("llama"), llama_tensors())
    out["truncated_data"] = truncated[: len(truncated) - 100]
    return out


def main():
    root = os.path.dirname(os.path.abspath(__file__))
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "corpus", "gguf_header")
    os.makedirs(target, exist_ok=True)
    for name, data in sorted(seeds().items()):
        assert len(data) < 4096, (name, len(data))
        with open(os.path.join(target, name), "wb") as f:
            f.write(data)
        print("%-28s %5d bytes" % (name, len(data)))


if __name__ == "__main__":
    main()
