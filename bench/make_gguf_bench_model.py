#!/usr/bin/env python3
"""Writes a GGUF with a preset's geometry (bora make-model --preset: tiny, 1b, mistral-7b) and
random but well-formed K-quant blocks (Q4_K, ffn_down and output Q6_K: llama.cpp's Q4_K_M mix),
for timing `bora bench --model FILE.gguf` (load = decode to q8) outside CI. Standard library only.

usage: make_gguf_bench_model.py PRESET OUT.gguf
"""
import os
import struct
import sys

PRESETS = {  # dim, layers, heads, kv heads, head_dim, hidden
    "tiny": (256, 4, 8, 2, 32, 768),
    "1b": (2048, 22, 32, 4, 64, 5632),
    "mistral-7b": (4096, 32, 32, 8, 128, 14336),
}
VOCAB = 32768
Q4_K, Q6_K, F32 = 12, 14, 0
BLOCK = {Q4_K: 144, Q6_K: 210}


def blocks(type_, elements):
    """Random blocks whose f16 scales are small positive numbers (no inf/NaN)."""
    size = BLOCK[type_]
    n = elements // 256
    data = bytearray(os.urandom(n * size))
    if type_ == Q4_K:
        data[0::size] = b"\x1f" * n  # d = 0x211F ~ 0.01
        data[1::size] = b"\x21" * n
        data[2::size] = b"\x29" * n  # dmin = 0x1C29 ~ 0.004
        data[3::size] = b"\x1c" * n
    else:
        data[208::size] = b"\x1f" * n
        data[209::size] = b"\x21" * n
    return bytes(data)


def s(text):
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def main():
    preset, out = sys.argv[1], sys.argv[2]
    dim, layers, heads, kv_heads, head_dim, hidden = PRESETS[preset]
    kvs = []

    def u32(key, value):
        kvs.append(s(key) + struct.pack("<II", 4, value))

    def f32(key, value):
        kvs.append(s(key) + struct.pack("<If", 6, value))

    kvs.append(s("general.architecture") + struct.pack("<I", 8) + s("llama"))
    u32("llama.context_length", 4096)
    u32("llama.embedding_length", dim)
    u32("llama.block_count", layers)
    u32("llama.feed_forward_length", hidden)
    u32("llama.attention.head_count", heads)
    u32("llama.attention.head_count_kv", kv_heads)
    u32("llama.attention.key_length", head_dim)
    u32("llama.attention.value_length", head_dim)
    u32("llama.rope.dimension_count", head_dim)
    f32("llama.rope.freq_base", 1e6)
    f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    u32("llama.vocab_size", VOCAB)
    tensors = []  # (name, ne, type, bytes)
    norm = struct.pack("<f", 1.0) * dim
    tensors.append(("token_embd.weight", [dim, VOCAB], Q4_K, None))
    for i in range(layers):
        b = "blk.%d." % i
        tensors += [(b + "attn_norm.weight", [dim], F32, norm), (b + "ffn_norm.weight", [dim], F32, norm),
                    (b + "attn_q.weight", [dim, heads * head_dim], Q4_K, None),
                    (b + "attn_k.weight", [dim, kv_heads * head_dim], Q4_K, None),
                    (b + "attn_v.weight", [dim, kv_heads * head_dim], Q4_K, None),
                    (b + "attn_output.weight", [heads * head_dim, dim], Q4_K, None),
                    (b + "ffn_gate.weight", [dim, hidden], Q4_K, None), (b + "ffn_up.weight", [dim, hidden], Q4_K, None),
                    (b + "ffn_down.weight", [hidden, dim], Q6_K, None)]
    tensors += [("output_norm.weight", [dim], F32, norm), ("output.weight", [dim, VOCAB], Q6_K, None)]
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    offset = 0
    sizes = []
    for name, ne, type_, data in tensors:
        elements = 1
        for n in ne:
            elements *= n
        size = len(data) if data is not None else elements // 256 * BLOCK[type_]
        sizes.append(size)
        header += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<q", n) for n in ne)
        header += struct.pack("<IQ", type_, offset)
        offset += (size + 31) // 32 * 32
    header += b"\0" * ((32 - len(header) % 32) % 32)
    with open(out, "wb") as f:
        f.write(header)
        for (name, ne, type_, data), size in zip(tensors, sizes):
            if data is None:
                elements = size // BLOCK[type_] * 256
                data = blocks(type_, elements)
            f.write(data)
            f.write(b"\0" * ((32 - size % 32) % 32))


if __name__ == "__main__":
    main()
