#!/usr/bin/env python3
"""bench/pytorch_reference.py: the EulerFormer-SASRec training step and full-ranking inference in PyTorch.

The PyTorch side of bench/compare.sh: the same model as euler-bench (docs/model.md:
RecBole's SASRec with the authors' EulerFormer changes), the same configuration flags, the
same generated batches (full-length lists of random items, random targets), the same explicit FLOP count
(matmuls 2 m n k, backward = 2 x forward, the model's nominal count), and the same JSON keys, one line per
configuration:

    python3 bench/pytorch_reference.py --batch 256,4096 --len 50 --threads 2

The model is written the way the authors' code computes it, in eager PyTorch:
  input      item_emb[ids] + pos_emb, channel pairs (2t, 2t+1) rotated by the learned table psi, LayerNorm,
             dropout;
  attention  q, k, v linear; theta = atan2 of the pairs, theta~ = delta theta (+ b for q) + alpha, mapped
             back with |z|; heads, softmax(q k^T / sqrt(dh) - 10000 mask), attention dropout, context,
             dense, dropout, residual, LayerNorm; FFN dense_2(gelu(dense_1(h))), dropout, residual, LN;
  loss       CE over all items at the last position + lamb * sum over layers of the phase contrastive
             terms of the rotated q and k phases (V = dropout(P, 0.5)), S = w cos P . cos V + w sin P . sin V
             as two batched matmuls per term;
  step       zero_grad, forward, backward, Adam (lr 1e-3).

--dropout-masks torch (default) uses nn.functional.dropout, as the authors' code does; --dropout-masks pool
draws every mask from a pool of random masks generated once (a random offset per use): PyTorch's cheapest
masks, which leaves out the cost of drawing random numbers.
"""

import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def parse_list(text):
    values = [int(v) for v in text.split(",")]
    if any(v <= 0 for v in values):
        raise SystemExit("pytorch_reference.py: lists must hold positive integers, got " + text)
    return values


class MaskPool:
    """Dropout masks cut from one pool of random keep/drop values drawn once (the cheapest masks)."""

    def __init__(self, size, seed):
        g = torch.Generator().manual_seed(seed)
        self.pool = torch.rand(size, generator=g)
        self.gen = torch.Generator().manual_seed(seed + 1)

    def dropout(self, x, p, training):
        if not training or p == 0:
            return x
        n = x.numel()
        start = int(torch.randint(0, self.pool.numel() - n + 1, (1,), generator=self.gen))
        keep = (self.pool[start:start + n] >= p).view_as(x)
        return x * keep * (1.0 / (1.0 - p))


class Dropouts:
    def __init__(self, kind, pool_size, seed):
        self.pool = MaskPool(pool_size, seed) if kind == "pool" else None

    def __call__(self, x, p, training):
        if self.pool is not None:
            return self.pool.dropout(x, p, training)
        return F.dropout(x, p, training)


class EulerAttention(nn.Module):
    def __init__(self, d, heads, max_len, dropout, attn_dropout, eps, pos, drop):
        super().__init__()
        self.d, self.heads, self.dh, self.pos, self.drop = d, heads, d // heads, pos, drop
        self.query, self.key, self.value, self.dense = (nn.Linear(d, d) for _ in range(4))
        self.norm = nn.LayerNorm(d, eps=eps)
        self.p, self.attn_p = dropout, attn_dropout
        j = torch.arange(max_len, dtype=torch.float32)[:, None]
        g = torch.pow(10000.0, -2.0 * torch.arange(d // 2, dtype=torch.float32) / d)[None, :]
        self.register_buffer("alpha", j * g)  # [N, d/2], never trained
        if pos == "euler":
            self.delta = nn.Parameter(torch.tensor(1.0))
            self.b = nn.Parameter(torch.tensor(0.0))
            self.w = nn.Parameter(torch.ones(d // 2))

    def rotate(self, x, is_query, n):
        """Euler transform (or RoPE) of q or k [B, N, d]; returns the rotated x and its phases [B, N, d/2]."""
        re, im = x[..., 0::2], x[..., 1::2]
        alpha = self.alpha[:n]
        if self.pos == "rope":
            c, s = torch.cos(alpha), torch.sin(alpha)
            return torch.stack((re * c - im * s, re * s + im * c), -1).flatten(-2), None
        lam = torch.sqrt(re * re + im * im)
        theta = self.delta * torch.atan2(im, re) + alpha
        if is_query:
            theta = theta + self.b
        return torch.stack((lam * torch.cos(theta), lam * torch.sin(theta)), -1).flatten(-2), theta

    def contrastive(self, phases, tep, lamb, training):
        # S[t, s] = sum_i w_i cos(P[t, i] - V[s, i]) = (w cos P) cos V^T + (w sin P) sin V^T, per list
        v = self.drop(phases, 0.5, training)
        s = torch.bmm(self.w * torch.cos(phases), torch.cos(v).transpose(1, 2)) + \
            torch.bmm(self.w * torch.sin(phases), torch.sin(v).transpose(1, 2))
        s = s / tep
        cl = torch.log(torch.exp(s).sum(-1) + 1e-5) - torch.diagonal(s, dim1=1, dim2=2)
        return lamb * cl.mean()

    def forward(self, x, mask, tep, lamb, training):
        B, N, _ = x.shape
        q, k, v = self.query(x), self.key(x), self.value(x)
        con = x.new_zeros(())
        if self.pos in ("rope", "euler"):
            q, pq = self.rotate(q, True, N)
            k, pk = self.rotate(k, False, N)
            if self.pos == "euler" and lamb > 0 and training:  # a loss term: scoring needs none of it
                con = self.contrastive(pq, tep, lamb, training) + self.contrastive(pk, tep, lamb, training)
        split = lambda t: t.view(B, N, self.heads, self.dh).permute(0, 2, 1, 3)
        scores = torch.matmul(split(q), split(k).transpose(-1, -2)) / math.sqrt(self.dh) + mask
        probs = self.drop(torch.softmax(scores, -1), self.attn_p, training)
        context = torch.matmul(probs, split(v)).permute(0, 2, 1, 3).reshape(B, N, self.d)
        out = self.drop(self.dense(context), self.p, training)
        return self.norm(out + x), con


class FeedForward(nn.Module):
    def __init__(self, d, inner, dropout, eps, drop):
        super().__init__()
        self.dense_1, self.dense_2 = nn.Linear(d, inner), nn.Linear(inner, d)
        self.norm = nn.LayerNorm(d, eps=eps)
        self.p, self.drop = dropout, drop

    def forward(self, x, training):
        h = self.drop(self.dense_2(F.gelu(self.dense_1(x))), self.p, training)
        return self.norm(h + x)


class EulerFormerSASRec(nn.Module):
    def __init__(self, o, n, d, drop):
        super().__init__()
        self.o, self.drop = o, drop
        eps = 1e-12
        self.item_embedding = nn.Embedding(o.items, d, padding_idx=0)
        self.position_embedding = nn.Embedding(n, d) if o.pos in ("learned", "euler") else None
        self.rotary_embedding = nn.Parameter(torch.zeros(n, d // 2)) if o.pos == "euler" else None
        self.norm = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList()
        for _ in range(o.layers):
            self.layers.append(nn.ModuleList([
                EulerAttention(d, o.heads, n, o.dropout, o.dropout, eps, o.pos, drop),
                FeedForward(d, 4 * d, o.dropout, eps, drop)]))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.data.normal_(0.0, 0.02)
            if isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def encode(self, ids, training):
        B, N = ids.shape
        x = self.item_embedding(ids)
        if self.position_embedding is not None:
            x = x + self.position_embedding.weight[:N]
        if self.rotary_embedding is not None:
            re, im = x[..., 0::2], x[..., 1::2]
            c, s = torch.cos(self.rotary_embedding[:N]), torch.sin(self.rotary_embedding[:N])
            x = torch.stack((re * c - im * s, re * s + im * c), -1).flatten(-2)
        x = self.drop(self.norm(x), self.o.dropout, training)
        causal = torch.tril(torch.ones(N, N, dtype=torch.bool))
        visible = causal[None, None] & (ids != 0)[:, None, None, :]
        mask = (~visible).float() * -10000.0
        con = x.new_zeros(())
        for attention, feed_forward in self.layers:
            x, c = attention(x, mask, self.o.tep, self.o.lamb, training)
            con = con + c
            x = feed_forward(x, training)
        return x, con

    def loss(self, ids, targets):
        out, con = self.encode(ids, True)
        last = (ids != 0).sum(1) - 1
        user = out[torch.arange(ids.shape[0]), last]
        logits = user @ self.item_embedding.weight.t()
        return F.cross_entropy(logits, targets) + con

    def score(self, ids):
        out, _ = self.encode(ids, False)
        last = (ids != 0).sum(1) - 1
        return out[torch.arange(ids.shape[0]), last] @ self.item_embedding.weight.t()


def forward_flops(o, B, N, D):
    """The same nominal count as bench/euler_bench.cpp: the full layers' matmuls, 2 m n k each."""
    I, K, rows = 4 * D, o.items, B * N
    per_layer = 2 * rows * D * D * 4 + 2 * rows * D * I * 2 + 2 * B * N * N * D * 2
    if o.pos == "euler" and o.lamb > 0:
        per_layer += 2 * 2 * 2 * B * N * N * (D / 2)
    return per_layer * o.layers, 2 * D * K


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def time_steps(warmup, steps, step):
    for _ in range(warmup):
        step()
    ms = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        ms.append(1e3 * (time.perf_counter() - t0))
    return median(ms), min(ms), max(ms)


def run_one(o, B, N, D):
    torch.manual_seed(o.seed)
    # The pool must hold the largest mask, the attention weights' [B, heads, N, N] (twice, for choice).
    drop = Dropouts(o.dropout_masks, max(1 << 24, 2 * B * o.heads * N * N), o.seed)
    model = EulerFormerSASRec(o, N, D, drop)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(o.seed + 1)
    ids = torch.randint(1, o.items, (B, N), generator=g)
    targets = torch.randint(1, o.items, (B,), generator=g)
    loss_value = [0.0]

    def step():
        adam.zero_grad(set_to_none=True)
        loss = model.loss(ids, targets)
        loss.backward()
        adam.step()
        loss_value[0] = float(loss)

    med, lo, hi = time_steps(o.warmup, o.steps, step)
    enc, per_row = forward_flops(o, B, N, D)
    step_flops = 3 * (enc + per_row * B)
    out = {"system": "pytorch", "torch": torch.__version__, "batch": B, "len": N, "dim": D,
           "layers": o.layers, "heads": o.heads, "items": o.items, "pos": o.pos, "objective": "last",
           "dropout": o.dropout, "dropout_masks": o.dropout_masks, "threads": torch.get_num_threads(),
           "steps": o.steps, "median_ms": med, "min_ms": lo, "max_ms": hi, "seq_per_s": B / (med / 1e3),
           "gflop_per_step": step_flops / 1e9, "gflops": step_flops / (med / 1e3) / 1e9, "loss": loss_value[0]}
    if o.gemm_gflops:
        out["gemm_gflops"] = o.gemm_gflops
        out["gemm_efficiency"] = out["gflops"] / o.gemm_gflops
    if o.infer:
        U = o.infer_batch
        users = torch.randint(1, o.items, (U, N), generator=g)

        def infer():
            with torch.no_grad():
                scores = model.score(users)
                float(scores[0, 0])

        imed, _, _ = time_steps(1, max(3, o.steps // 4), infer)
        fenc, frow = forward_flops(o, U, N, D)
        out.update({"infer_batch": U, "infer_median_ms": imed, "users_per_s": U / (imed / 1e3),
                    "infer_gflops": (fenc + frow * U) / (imed / 1e3) / 1e9})
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return out


def gemm_ceiling(n=2048):
    a, b = torch.randn(n, n), torch.randn(n, n)
    rates = []
    for i in range(6):
        t0 = time.perf_counter()
        torch.mm(a, b)
        s = time.perf_counter() - t0
        if i > 0:
            rates.append(2.0 * n ** 3 / s / 1e9)
    return median(rates)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", default="256")
    p.add_argument("--len", default="50")
    p.add_argument("--dim", default="64")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--items", type=int, default=3416)
    p.add_argument("--pos", default="euler", choices=["none", "learned", "rope", "euler"])
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--dropout-masks", default="torch", choices=["torch", "pool"])
    p.add_argument("--lamb", type=float, default=1e-5)
    p.add_argument("--tep", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--infer", type=lambda s: s.lower() in ("1", "true", "yes"), default=True)
    p.add_argument("--infer-batch", type=int, default=1024)
    p.add_argument("--gemm", type=lambda s: s.lower() in ("1", "true", "yes"), default=True)
    p.add_argument("--seed", type=int, default=2024)
    o = p.parse_args()
    torch.set_num_threads(o.threads)
    o.gemm_gflops = gemm_ceiling() if o.gemm else 0
    for D in parse_list(o.dim):
        for N in parse_list(o.len):
            for B in parse_list(o.batch):
                print(json.dumps(run_one(o, B, N, D)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
