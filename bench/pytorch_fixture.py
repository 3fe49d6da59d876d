#!/usr/bin/env python3
"""bench/pytorch_fixture.py: the loss and every gradient of small EulerFormer models, computed by PyTorch.

Writes tests/fixtures/pytorch/<case>.safetensors, which tests/test_pytorch_fixture.cpp compares euler
against (loss and gradients to 1e-9 in double). The model here is written from the project's
specification (docs/model.md, after the paper and the authors' code, github.com/Ethan-TZ/EulerFormer:
RecBole's SASRec with the authors' EulerFormer changes, and the baselines euler offers), not from
euler's C++ code, in eager
PyTorch with float64 and autograd, so it checks euler against an implementation that shares none of
its code. Dropout is off (its masks cannot match across libraries), so the contrastive loss's second
view is the phases themselves, as the specification says.

    python3 bench/pytorch_fixture.py                     # rewrites every fixture
    python3 bench/pytorch_fixture.py --out DIR           # somewhere else

Each file holds, for one case: the model's parameters under euler's (the authors') names, float64;
the configuration as JSON under the metadata key "config" (so it loads as an euler checkpoint);
fixture.ids and fixture.targets (int32, a batch with padding); fixture.loss (float64 [3]: total,
cross-entropy, contrastive); fixture.grad.<name> for every parameter. Parameters are drawn at scales
far from the training initialisation (delta 0.7 to 1.3, b and psi of order 1, wide weights), so that
every term of the loss and every branch of the gradient matters. Needs python3-torch (Debian).
"""

import argparse
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

# (name, config): every positional scheme on the SASRec backbone with both objectives, the authors'
# and the masked contrastive modes, the paper's vector delta, the BERT4Rec backbone, EulerFormer
# without the absolute position table, and with RecBole's padding_idx (no lookup gradient to row 0).
BASE = {"n_layers": 2, "n_heads": 2, "hidden_size": 4, "inner_size": 8, "MAX_ITEM_LIST_LENGTH": 5, "n_items": 7,
        "hidden_act": "gelu", "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0,
        "euler_bias": True, "tep": 0.7, "lamb": 0.3, "delta_shape": "scalar", "contrastive_mode": "authors",
        "input_rotary": True, "adaptation": True, "differential_rotation": True, "learnable_freq": False,
        "absolute_positions": True, "padding_idx": False}
CASES = [
    ("euler_last", {"pos": "euler", "backbone": "sasrec", "objective": "last"}),
    ("euler_all", {"pos": "euler", "backbone": "sasrec", "objective": "all"}),
    ("euler_all_masked_vector", {"pos": "euler", "backbone": "sasrec", "objective": "all", "contrastive_mode": "masked",
                                 "delta_shape": "vector"}),
    ("euler_no_bias_no_rotary", {"pos": "euler", "backbone": "sasrec", "objective": "last", "euler_bias": False,
                                 "input_rotary": False}),
    ("rope_last", {"pos": "rope", "backbone": "sasrec", "objective": "last"}),
    ("rope_all", {"pos": "rope", "backbone": "sasrec", "objective": "all"}),
    ("sasrec_last", {"pos": "learned", "backbone": "sasrec", "objective": "last"}),
    ("sasrec_all", {"pos": "learned", "backbone": "sasrec", "objective": "all"}),
    ("euler_bert4rec", {"pos": "euler", "backbone": "bert4rec", "objective": "all"}),
    ("rope_bert4rec", {"pos": "rope", "backbone": "bert4rec", "objective": "all"}),
    ("sasrec_bert4rec", {"pos": "learned", "backbone": "bert4rec", "objective": "all"}),
    ("euler_no_absolute_positions", {"pos": "euler", "backbone": "sasrec", "objective": "all", "absolute_positions": False}),
    ("euler_padding_idx", {"pos": "euler", "backbone": "sasrec", "objective": "all", "padding_idx": True}),
]


def parameters(c, gen):
    """The parameters of config c: name -> float64 tensor, drawn from gen."""
    D, I, half, N = c["hidden_size"], c["inner_size"], c["hidden_size"] // 2, c["MAX_ITEM_LIST_LENGTH"]
    rows = c["n_items"] + (1 if c["backbone"] == "bert4rec" else 0)  # BERT4Rec: the mask token's row
    euler = c["pos"] == "euler"
    phase_shape = () if c["delta_shape"] == "scalar" else (half,)

    def normal(*shape, mean=0.0, std=0.5):
        return mean + std * torch.randn(tuple(shape), generator=gen, dtype=torch.float64)

    def uniform(shape, lo, hi):
        return lo + (hi - lo) * torch.rand(tuple(shape), generator=gen, dtype=torch.float64)

    p = {"item_embedding.weight": normal(rows, D)}
    if c["pos"] == "learned" or (euler and c["absolute_positions"]):
        p["position_embedding.weight"] = normal(N, D)
    if euler and c["input_rotary"]:
        p["rotary_embedding.weight"] = normal(N, half, std=1.0)
    p["LayerNorm.weight"], p["LayerNorm.bias"] = normal(D, mean=1.0, std=0.2), normal(D, std=0.2)
    for l in range(c["n_layers"]):
        mha = f"trm_encoder.layer.{l}.multi_head_attention"
        for name in ("query", "key", "value"):
            p[f"{mha}.{name}.weight"], p[f"{mha}.{name}.bias"] = normal(D, D), normal(D, std=0.2)
        if euler:
            p[f"{mha}.euler.delta"] = uniform(phase_shape, 0.7, 1.3)
            if c["euler_bias"]:
                p[f"{mha}.euler.b"] = normal(*phase_shape, std=0.5)
            p[f"{mha}.w"] = normal(half, mean=1.0, std=0.3)
        p[f"{mha}.dense.weight"], p[f"{mha}.dense.bias"] = normal(D, D), normal(D, std=0.2)
        p[f"{mha}.LayerNorm.weight"], p[f"{mha}.LayerNorm.bias"] = normal(D, mean=1.0, std=0.2), normal(D, std=0.2)
        ff = f"trm_encoder.layer.{l}.feed_forward"
        p[f"{ff}.dense_1.weight"], p[f"{ff}.dense_1.bias"] = normal(I, D), normal(I, std=0.2)
        p[f"{ff}.dense_2.weight"], p[f"{ff}.dense_2.bias"] = normal(D, I), normal(D, std=0.2)
        p[f"{ff}.LayerNorm.weight"], p[f"{ff}.LayerNorm.bias"] = normal(D, mean=1.0, std=0.2), normal(D, std=0.2)
    return {k: v.clone().requires_grad_(True) for k, v in p.items()}


def batch(c, gen):
    """Right-padded ids [B, N] and targets (objective last: [B]; otherwise [B, N], 0 = no loss)."""
    N, K = c["MAX_ITEM_LIST_LENGTH"], c["n_items"]
    lengths = [N, 3, 1, N - 1]  # a full list, shorter ones, a single item
    ids = torch.zeros(len(lengths), N, dtype=torch.int32)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(1, K, (n,), generator=gen, dtype=torch.int32)
    if c["backbone"] == "bert4rec":  # masked positions carry the mask token (row K) and a target
        targets = torch.zeros_like(ids)
        for b, n in enumerate(lengths):
            for j in range(n):
                if (b + j) % 2 == 0:
                    targets[b, j] = ids[b, j]
                    ids[b, j] = K
        return ids, targets
    if c["objective"] == "last":
        return ids, torch.randint(1, K, (len(lengths),), generator=gen, dtype=torch.int32)
    targets = torch.zeros_like(ids)  # the next item at every position, a random one after the last
    for b, n in enumerate(lengths):
        targets[b, :n - 1] = ids[b, 1:n]
        targets[b, n - 1] = int(torch.randint(1, K, (1,), generator=gen))
    return ids, targets


def rotate_pairs(x, angle):
    """Rotate each channel pair (x[2t], x[2t+1]) = re + i im by angle[..., t]."""
    re, im = x[..., 0::2], x[..., 1::2]
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack((re * c - im * s, re * s + im * c), dim=-1).flatten(-2)


def euler_rotate(x, delta, bias, alpha):
    """Polar form of the pairs, theta~ = delta theta + bias + alpha, back to real with the same modulus."""
    re, im = x[..., 0::2], x[..., 1::2]
    modulus, theta = torch.sqrt(re * re + im * im), torch.atan2(im, re)
    phase = delta * theta + bias + alpha
    return torch.stack((modulus * torch.cos(phase), modulus * torch.sin(phase)), dim=-1).flatten(-2)


def contrastive(phases, w, real, c):
    """lamb * InfoNCE over the positions of each list, S[t, s] = sum_i w_i cos(P[t, i] - V[s, i]), V = P."""
    diff = phases.unsqueeze(2) - phases.unsqueeze(1)            # [B, N, N, half]: t, s
    S = (w * torch.cos(diff)).sum(-1) / c["tep"]                # [B, N, N]
    if c["contrastive_mode"] == "masked":                       # no padding keys, no padding queries
        S_keys = S.masked_fill(~real.unsqueeze(1), float("-inf"))
        terms = torch.log(torch.exp(S_keys).sum(-1) + 1e-5) - torch.diagonal(S, dim1=1, dim2=2)
        return c["lamb"] * terms[real].mean()
    terms = torch.log(torch.exp(S).sum(-1) + 1e-5) - torch.diagonal(S, dim1=1, dim2=2)
    return c["lamb"] * terms.mean()


def losses(p, c, ids, targets):
    """(total, cross-entropy, contrastive) of the batch, dropout off."""
    B, N = ids.shape
    D, H, half, eps = c["hidden_size"], c["n_heads"], c["hidden_size"] // 2, c["layer_norm_eps"]
    euler = c["pos"] == "euler"
    ids_long = ids.long()
    real = ids_long != 0

    # RecBole's nn.Embedding(padding_idx=0) sends no gradient to row 0 from the lookups; euler does
    # that with padding_idx, and otherwise keeps the true derivative.
    x = F.embedding(ids_long, p["item_embedding.weight"], padding_idx=0 if c["padding_idx"] else None)
    if "position_embedding.weight" in p:
        x = x + p["position_embedding.weight"][:N]
    if "rotary_embedding.weight" in p:
        x = rotate_pairs(x, p["rotary_embedding.weight"][:N])
    x = F.layer_norm(x, (D,), p["LayerNorm.weight"], p["LayerNorm.bias"], eps)

    g = torch.tensor([10000.0 ** (-2.0 * t / D) for t in range(half)], dtype=torch.float64)
    alpha = torch.arange(N, dtype=torch.float64).unsqueeze(1) * g  # [N, half]
    visible = real.unsqueeze(1).expand(B, N, N)                     # [B, t, s]: key s exists
    if c["backbone"] == "sasrec":
        visible = visible & torch.tril(torch.ones(N, N, dtype=torch.bool))
    additive = torch.where(visible, 0.0, -10000.0).to(torch.float64).unsqueeze(1)  # [B, 1, N, N]

    con = torch.zeros((), dtype=torch.float64)
    for l in range(c["n_layers"]):
        mha = f"trm_encoder.layer.{l}.multi_head_attention"

        def linear(name, v):
            return v @ p[f"{name}.weight"].T + p[f"{name}.bias"]

        q, k, v = linear(f"{mha}.query", x), linear(f"{mha}.key", x), linear(f"{mha}.value", x)
        if c["pos"] == "rope":
            q, k = rotate_pairs(q, alpha), rotate_pairs(k, alpha)
        if euler:
            delta = p[f"{mha}.euler.delta"]
            bias = p.get(f"{mha}.euler.b", torch.zeros((), dtype=torch.float64))
            q, k = euler_rotate(q, delta, bias, alpha), euler_rotate(k, delta, 0.0, alpha)
            if c["lamb"] > 0:  # on atan2 of the rotated vectors, as the authors' code
                w = p[f"{mha}.w"]
                con = con + contrastive(torch.atan2(q[..., 1::2], q[..., 0::2]), w, real, c)
                con = con + contrastive(torch.atan2(k[..., 1::2], k[..., 0::2]), w, real, c)

        def heads(t):
            return t.view(B, N, H, D // H).transpose(1, 2)

        logits = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(D // H) + additive
        context = (torch.softmax(logits, dim=-1) @ heads(v)).transpose(1, 2).reshape(B, N, D)
        x = F.layer_norm(linear(f"{mha}.dense", context) + x, (D,), p[f"{mha}.LayerNorm.weight"], p[f"{mha}.LayerNorm.bias"], eps)
        ff = f"trm_encoder.layer.{l}.feed_forward"
        h = linear(f"{ff}.dense_2", F.gelu(linear(f"{ff}.dense_1", x)))
        x = F.layer_norm(h + x, (D,), p[f"{ff}.LayerNorm.weight"], p[f"{ff}.LayerNorm.bias"], eps)

    table = p["item_embedding.weight"][:c["n_items"]]  # scores over the items, padding row 0 included
    if c["backbone"] == "sasrec" and c["objective"] == "last":
        last = (real.sum(1) - 1).clamp(min=0)
        scores = x[torch.arange(B), last] @ table.T
        ce = F.cross_entropy(scores, targets.long(), ignore_index=0)
    else:
        scores = x.reshape(B * N, D) @ table.T
        ce = F.cross_entropy(scores, targets.reshape(-1).long(), ignore_index=0)
    with_con = euler and c["lamb"] > 0
    return (ce + con if with_con else ce), ce, con


def write_safetensors(path, tensors, metadata):
    """A safetensors file: 8-byte little-endian header length, JSON header, then the raw data."""
    kinds = {torch.float64: "F64", torch.int32: "I32"}
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": kinds[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "pytorch"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for index, (name, changes) in enumerate(CASES):
        c = dict(BASE, **changes)
        gen = torch.Generator().manual_seed(1000 + index)
        p = parameters(c, gen)
        ids, targets = batch(c, gen)
        total, ce, con = losses(p, c, ids, targets)
        total.backward()
        tensors = {k: v for k, v in p.items()}
        tensors["fixture.ids"], tensors["fixture.targets"] = ids, targets
        tensors["fixture.loss"] = torch.tensor([total.item(), ce.item(), con.item()], dtype=torch.float64)
        for k, v in p.items():
            tensors["fixture.grad." + k] = v.grad
        metadata = {"format": "pt", "config": json.dumps(c), "generator": "bench/pytorch_fixture.py",
                    "torch": torch.__version__}
        path = os.path.join(args.out, name + ".safetensors")
        write_safetensors(path, tensors, metadata)
        print(f"{os.path.relpath(path)}: loss {total.item():.6f} (ce {ce.item():.6f}, contrastive {con.item():.6f}), {len(p)} parameters")


if __name__ == "__main__":
    main()
