#!/usr/bin/env python3
"""PyTorch-on-CPU baseline for `bora tune`: one LoRA training step (forward, backward, AdamW) of a
Mistral-shaped decoder with frozen base weights, at the shapes of bora's presets.

Usage: python3 bench/train_pytorch.py [--preset 1b|tiny] [--seq-len 512] [--rank 16]
       [--dtype bf16|fp32|autocast] [--steps 5] [--threads 2]
Prints the median tokens/s over the steps after one warm-up step. Weights are random (speed does
not depend on their values); the architecture is mistral-inference's (RMSNorm, interleaved RoPE,
GQA, SwiGLU) with LoRA on wq wk wv wo w1 w2 w3 as mistral-finetune applies it.
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

PRESETS = {
    "tiny": dict(dim=256, n_layers=4, n_heads=8, n_kv_heads=2, head_dim=32, hidden_dim=768),
    "1b": dict(dim=2048, n_layers=22, n_heads=32, n_kv_heads=4, head_dim=64, hidden_dim=5632),
}
VOCAB = 32768


class LoraLinear(torch.nn.Module):
    def __init__(self, n_in, n_out, rank, scaling, dtype):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(n_out, n_in, dtype=dtype) / math.sqrt(n_in),
                                         requires_grad=False)
        self.lora_a = torch.nn.Parameter(torch.empty(rank, n_in, dtype=torch.float32))
        torch.nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.lora_b = torch.nn.Parameter(torch.zeros(n_out, rank, dtype=torch.float32))
        self.scaling = scaling

    def forward(self, x):
        low_rank = (x.to(self.lora_a.dtype) @ self.lora_a.t()) @ self.lora_b.t()
        return F.linear(x, self.weight) + (self.scaling * low_rank).to(x.dtype)


def rms_norm(x, weight, eps=1e-5):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * weight


def rope(x, cos, sin):
    # x: [T, H, D] interleaved pairs
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return out.flatten(-2)


class Block(torch.nn.Module):
    def __init__(self, p, rank, dtype):
        super().__init__()
        self.p = p
        q, kv = p["n_heads"] * p["head_dim"], p["n_kv_heads"] * p["head_dim"]
        self.wq = LoraLinear(p["dim"], q, rank, 2.0, dtype)
        self.wk = LoraLinear(p["dim"], kv, rank, 2.0, dtype)
        self.wv = LoraLinear(p["dim"], kv, rank, 2.0, dtype)
        self.wo = LoraLinear(q, p["dim"], rank, 2.0, dtype)
        self.w1 = LoraLinear(p["dim"], p["hidden_dim"], rank, 2.0, dtype)
        self.w2 = LoraLinear(p["hidden_dim"], p["dim"], rank, 2.0, dtype)
        self.w3 = LoraLinear(p["dim"], p["hidden_dim"], rank, 2.0, dtype)
        self.attention_norm = torch.nn.Parameter(torch.ones(p["dim"], dtype=dtype), requires_grad=False)
        self.ffn_norm = torch.nn.Parameter(torch.ones(p["dim"], dtype=dtype), requires_grad=False)

    def forward(self, h, cos, sin):
        p = self.p
        t = h.shape[0]
        x = rms_norm(h, self.attention_norm)
        q = rope(self.wq(x).view(t, p["n_heads"], p["head_dim"]), cos, sin)
        k = rope(self.wk(x).view(t, p["n_kv_heads"], p["head_dim"]), cos, sin)
        v = self.wv(x).view(t, p["n_kv_heads"], p["head_dim"])
        repeat = p["n_heads"] // p["n_kv_heads"]
        k = k.repeat_interleave(repeat, dim=1)
        v = v.repeat_interleave(repeat, dim=1)
        # (torch 1.13 has no scaled_dot_product_attention)
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(p["head_dim"])
        causal = torch.full((t, t), float("-inf"), dtype=scores.dtype).triu(1)
        o = torch.softmax(scores + causal, dim=-1) @ v
        h = h + self.wo(o.transpose(0, 1).reshape(t, -1))
        x = rms_norm(h, self.ffn_norm)
        return h + self.w2(F.silu(self.w1(x)) * self.w3(x))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="1b", choices=sorted(PRESETS))
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--dtype", default="bf16", choices=["bf16", "fp32", "autocast"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    p = PRESETS[args.preset]
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    blocks = torch.nn.ModuleList(Block(p, args.rank, dtype) for _ in range(p["n_layers"]))
    embeddings = torch.randn(VOCAB, p["dim"], dtype=dtype) * 0.02
    output = torch.randn(VOCAB, p["dim"], dtype=dtype) / math.sqrt(p["dim"])
    norm = torch.ones(p["dim"], dtype=dtype)
    params = [x for x in blocks.parameters() if x.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    positions = torch.arange(args.seq_len, dtype=torch.float32)
    freqs = 1.0 / (1e6 ** (torch.arange(0, p["head_dim"], 2, dtype=torch.float32) / p["head_dim"]))
    angles = torch.outer(positions, freqs)
    cos, sin = angles.cos()[:, None, :].to(dtype), angles.sin()[:, None, :].to(dtype)
    tokens = torch.randint(0, VOCAB, (args.seq_len + 1,))

    def step():
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.dtype == "autocast"):
            h = embeddings[tokens[:-1]]
            for block in blocks:
                h = block(h, cos, sin)
            logits = F.linear(rms_norm(h, norm), output).float()
            loss = F.cross_entropy(logits, tokens[1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    step()  # warm-up
    rates = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        rates.append(args.seq_len / (time.perf_counter() - start))
    print(f"pytorch {torch.__version__} preset {args.preset} seq_len {args.seq_len} rank {args.rank} "
          f"dtype {args.dtype} threads {args.threads}: median {statistics.median(rates):.1f} tok/s "
          f"(min {min(rates):.1f}, max {max(rates):.1f}, {args.steps} steps)")


if __name__ == "__main__":
    main()
