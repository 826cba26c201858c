#!/usr/bin/env python3
"""Writes small GGUF seeds with tokenizer metadata for fuzz/corpus/gguf_tokenizer (stdlib only)."""
import pathlib
import struct
import sys

STRING, ARRAY, F32, I32, U32, BOOL, U8 = 8, 9, 6, 5, 4, 7, 0


def s(text):
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def kv_string(key, value):
    return s(key) + struct.pack("<I", STRING) + s(value)


def kv_u32(key, value):
    return s(key) + struct.pack("<II", U32, value)


def kv_strings(key, values):
    return s(key) + struct.pack("<IIQ", ARRAY, STRING, len(values)) + b"".join(s(v) for v in values)


def kv_numbers(key, kind, fmt, values):
    return s(key) + struct.pack("<IIQ", ARRAY, kind, len(values)) + b"".join(struct.pack(fmt, v) for v in values)


def gguf(kvs):
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs)


def gpt2_string(byte):
    printable = 33 <= byte <= 126 or 161 <= byte <= 172 or 174 <= byte <= 255
    if printable:
        return chr(byte)
    extra = [b for b in range(256) if not (33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255)].index(byte)
    return chr(256 + extra)


def spm(extra_pieces, template=None, byte_pieces=False):
    """A SentencePiece vocabulary; byte pieces make it larger than fuzz.sh's 4 KB -max_len."""
    chars = ["\u2581", "H", "e", "l", "o", "w", "r", "d", "1", "2"]
    tokens = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"] + chars + extra_pieces
    types = [2, 3, 3, 3, 3] + [1] * (len(chars) + len(extra_pieces))
    if byte_pieces:
        tokens += ["<0x%02X>" % b for b in range(256)]
        types += [6] * 256
    scores = [0.0] * 5 + [-float(i) for i in range(len(tokens) - 5)]
    kvs = [kv_string("tokenizer.ggml.model", "llama"), kv_strings("tokenizer.ggml.tokens", tokens),
           kv_numbers("tokenizer.ggml.scores", F32, "<f", scores),
           kv_numbers("tokenizer.ggml.token_type", U8, "<B", types),
           kv_u32("tokenizer.ggml.bos_token_id", 1), kv_u32("tokenizer.ggml.eos_token_id", 2)]
    if template:
        kvs.append(kv_string("tokenizer.chat_template", template))
    return gguf(kvs)


def tekken(merges, specials=("<unk>", "<s>", "</s>", "[INST]", "[/INST]")):
    singles = [gpt2_string(b) for b in range(256)]
    extra = ["Ġt", "he", "Ġthe", "ll", "llo"]
    tokens = list(specials) + singles + extra
    types = [3] * len(specials) + [1] * (256 + len(extra))
    return gguf([kv_string("tokenizer.ggml.model", "gpt2"), kv_string("tokenizer.ggml.pre", "tekken"),
                 kv_strings("tokenizer.ggml.tokens", tokens),
                 kv_numbers("tokenizer.ggml.token_type", U8, "<B", types),
                 kv_strings("tokenizer.ggml.merges", merges),
                 kv_string("tokenizer.chat_template", "mistral-v3-tekken")])


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent / "corpus" / "gguf_tokenizer")
    out.mkdir(parents=True, exist_ok=True)
    seeds = {
        "spm_small": spm(["\u2581H", "el", "lo", "\u2581Hel", "\u2581Hello"]),
        "spm_bytes": spm(["\u2581H"], byte_pieces=True),
        "spm_template_v7": spm(["\u2581a"], "{{ '[SYSTEM_PROMPT]' }}"),
        "spm_reference_doc": spm(["[REFERENCE_DOC_0]", "\u2581x"]),
        "tekken_small": tekken(["Ġ t", "h e", "Ġt he", "l l", "ll o"]),
        "tekken_v11": tekken(["h e"], ("<unk>", "<s>", "</s>", "[INST]", "[ARGS]", "[CALL_ID]")),
        "gpt2_other_pre": gguf([kv_string("tokenizer.ggml.model", "gpt2"), kv_string("tokenizer.ggml.pre", "llama-bpe")]),
    }
    for name, data in seeds.items():
        (out / name).write_bytes(data)


if __name__ == "__main__":
    main()
