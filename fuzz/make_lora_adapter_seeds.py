#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_lora_adapter (fuzz/corpus/lora_adapter): valid and
near-valid adapter folders for the fuzz target's small bases (dim 32, 2 layers, 4 heads of 8,
2 KV heads, FFN 64; MoE: 4 experts), packed as the target reads them."""
import json
import os
import struct
import sys

MARKER = b"\n--8<--\n"
DIM, LAYERS, HEADS, KV_HEADS, HEAD_DIM, HIDDEN = 32, 2, 4, 2, 8, 64


def bf16(values):
    out = bytearray()
    for v in values:
        bits = struct.unpack("<I", struct.pack("<f", v))[0]
        out += struct.pack("<H", bits >> 16)
    return bytes(out)


def safetensors(tensors, dtype="BF16"):
    """tensors: list of (name, shape); values are small deterministic numbers."""
    header, data = {}, bytearray()
    for index, (name, shape) in enumerate(tensors):
        count = 1
        for d in shape:
            count *= d
        values = [((i * 7 + index) % 13 - 6) / 64.0 for i in range(count)]
        raw = bf16(values) if dtype == "BF16" else struct.pack("<%df" % count, *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(data)


def mistral_attention(rank, layers=LAYERS, targets=("wq", "wv")):
    shapes = {"wq": (HEADS * HEAD_DIM, DIM), "wk": (KV_HEADS * HEAD_DIM, DIM),
              "wv": (KV_HEADS * HEAD_DIM, DIM), "wo": (DIM, HEADS * HEAD_DIM)}
    tensors = []
    for layer in range(layers):
        for target in targets:
            out, inp = shapes[target]
            prefix = "layers.%d.attention.%s" % (layer, target)
            tensors += [(prefix + ".lora_A.weight", [rank, inp]), (prefix + ".lora_B.weight", [out, rank])]
    return tensors


def mistral_experts(rank, experts=4):
    tensors = []
    for layer in range(LAYERS):
        for e in range(experts):
            prefix = "layers.%d.feed_forward.experts.%d.w1" % (layer, e)
            tensors += [(prefix + ".lora_A.weight", [rank, DIM]), (prefix + ".lora_B.weight", [HIDDEN, rank])]
    return tensors


def peft(rank, modules=("q_proj", "v_proj")):
    shapes = {"q_proj": (HEADS * HEAD_DIM, DIM), "v_proj": (KV_HEADS * HEAD_DIM, DIM),
              "down_proj": (DIM, HIDDEN)}
    tensors = []
    for layer in range(LAYERS):
        for module in modules:
            out, inp = shapes[module]
            group = "mlp" if module.endswith("proj") and module[0] in "gdu" else "self_attn"
            prefix = "base_model.model.model.layers.%d.%s.%s" % (layer, group, module)
            tensors += [(prefix + ".lora_A.weight", [rank, inp]), (prefix + ".lora_B.weight", [out, rank])]
    return tensors


def mistral_params(rank, scaling=2.0, moe=False):
    params = {"dim": DIM, "n_layers": LAYERS, "head_dim": HEAD_DIM, "hidden_dim": HIDDEN,
              "n_heads": HEADS, "n_kv_heads": KV_HEADS, "norm_eps": 1e-5, "vocab_size": 128,
              "rope_theta": 1000000.0,
              "lora": {"enable": True, "rank": rank, "dropout": 0.0, "scaling": scaling}}
    if moe:
        params["moe"] = {"num_experts": 4, "num_experts_per_tok": 2}
    return json.dumps(params).encode()


def seeds():
    yield "mistral_attention_no_params", b"\x00" + safetensors(mistral_attention(2))
    yield "mistral_attention_params", b"\x00" + mistral_params(2) + MARKER + safetensors(mistral_attention(2))
    yield "mistral_wk_wo_f32", b"\x00" + mistral_params(2, 1.0) + MARKER + safetensors(
        mistral_attention(2, targets=("wk", "wo")), "F32")
    yield "mistral_moe_experts", b"\x00" + mistral_params(1, moe=True) + MARKER + safetensors(mistral_experts(1))
    yield "mistral_rank_mismatch", b"\x00" + mistral_params(8) + MARKER + safetensors(mistral_attention(2))
    yield "mistral_one_layer_missing", b"\x00" + safetensors(mistral_attention(2, layers=1) + [
        ("layers.1.attention.wq.lora_A.weight", [2, DIM])])
    config = {"r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"], "peft_type": "LORA"}
    yield "peft_attention", b"\x01" + json.dumps(config).encode() + MARKER + safetensors(peft(2))
    rs = dict(config, use_rslora=True, target_modules=["q_proj", "v_proj", "down_proj"])
    yield "peft_rslora_mlp", b"\x01" + json.dumps(rs).encode() + MARKER + safetensors(
        peft(2, ("q_proj", "v_proj", "down_proj")))
    yield "peft_dora_refused", b"\x01" + json.dumps(dict(config, use_dora=True)).encode() + MARKER + safetensors(peft(2))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "lora_adapter")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
