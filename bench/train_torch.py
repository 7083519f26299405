#!/usr/bin/python3
"""PyTorch CPU training speed peer for bench/train.ts: the same LLaMA-style decoder (RMSNorm, RoPE,
GQA attention with K/V repeated to H heads, SwiGLU, untied head), AdamW, gradient clipping, on random
tokens. Prints one JSON line: tokens/s, the BLAS library torch actually loaded, threads.

Usage: /usr/bin/python3 bench/train_torch.py --layers 4 --hidden 256 --heads 8 --kv-heads 2 \
         --ffn 704 --vocab 4096 --batch 8 --context 256 --steps 5 --threads 2
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


class Block(torch.nn.Module):
    def __init__(self, C, H, K, D, Fw):
        super().__init__()
        self.H, self.K, self.D = H, K, D
        self.ln1 = torch.nn.Parameter(torch.ones(C))
        self.q = torch.nn.Linear(C, H * D, bias=False)
        self.k = torch.nn.Linear(C, K * D, bias=False)
        self.v = torch.nn.Linear(C, K * D, bias=False)
        self.o = torch.nn.Linear(H * D, C, bias=False)
        self.ln2 = torch.nn.Parameter(torch.ones(C))
        self.gate = torch.nn.Linear(C, Fw, bias=False)
        self.up = torch.nn.Linear(C, Fw, bias=False)
        self.down = torch.nn.Linear(Fw, C, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        H, K, D = self.H, self.K, self.D
        h = rms(x, self.ln1)
        q = rope(self.q(h).view(B, T, H, D).transpose(1, 2), cos, sin)
        k = rope(self.k(h).view(B, T, K, D).transpose(1, 2), cos, sin)
        v = self.v(h).view(B, T, K, D).transpose(1, 2)
        k = k.repeat_interleave(H // K, dim=1)
        v = v.repeat_interleave(H // K, dim=1)
        s = (q @ k.transpose(-1, -2)) / D ** 0.5
        a = s.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + self.o(a.transpose(1, 2).reshape(B, T, H * D))
        h = rms(x, self.ln2)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


def rms(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):
    D = x.shape[-1]
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class Model(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        D = a.hidden // a.heads
        self.emb = torch.nn.Embedding(a.vocab, a.hidden)
        self.blocks = torch.nn.ModuleList([Block(a.hidden, a.heads, a.kv_heads, D, a.ffn) for _ in range(a.layers)])
        self.norm = torch.nn.Parameter(torch.ones(a.hidden))
        self.head = torch.nn.Linear(a.hidden, a.vocab, bias=False)
        inv = 1.0 / (10000 ** (torch.arange(0, D, 2).float() / D))
        f = torch.outer(torch.arange(a.context).float(), inv)
        emb = torch.cat([f, f], -1)
        self.cos, self.sin = emb.cos(), emb.sin()
        self.mask = torch.ones(a.context, a.context, dtype=torch.bool).triu(1)

    def forward(self, idx, targets):
        x = self.emb(idx)
        for b in self.blocks:
            x = b(x, self.cos, self.sin, self.mask)
        logits = self.head(rms(x, self.norm))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    p = argparse.ArgumentParser()
    for name, default in [("layers", 4), ("hidden", 256), ("heads", 8), ("kv-heads", 2), ("ffn", 704), ("vocab", 4096),
                          ("batch", 8), ("context", 256), ("steps", 5), ("warmup", 1), ("threads", 2)]:
        p.add_argument("--" + name, type=int, default=default)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Model(a)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    params = sum(t.numel() for t in model.parameters())

    def step():
        idx = torch.randint(a.vocab, (a.batch, a.context))
        tgt = torch.randint(a.vocab, (a.batch, a.context))
        opt.zero_grad(set_to_none=True)
        loss = model(idx, tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    seconds = time.perf_counter() - t0
    blas = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.lower()})
    print(json.dumps(dict(impl="pytorch", torch=torch.__version__, params=params, threads=torch.get_num_threads(),
                          blas=blas, steps=a.steps, seconds=seconds, tokens_per_second=a.steps * a.batch * a.context / seconds)))


if __name__ == "__main__":
    main()
