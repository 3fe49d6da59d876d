#!/usr/bin/env python3
"""tests/authors_interop_test.py EULER SCRATCH: checkpoints move between euler and the EulerFormer
authors' PyTorch model, both ways (the ctest test authors_interop; skipped, exit 77, without torch).

1. euler trains a small EulerFormer; scripts/euler_to_authors.py writes its state_dict.
2. A model with the authors' module structure, written here from the specification (docs/model.md,
   sections 3-4: RecBole's SASRec, the rotation on q and k before the head split), loads it with
   strict=True and scores three histories as `euler recommend` does, to 1e-5.
3. scripts/authors_to_euler.py converts the state_dict back: every tensor is bit-identical to euler's
   file and `euler eval` prints the same metrics. The same through a RecBole checkpoint dict whose
   Config class this process defines and the converter does not have.
4. Through RecBole's numbering (items in another order, given as a token list): the .pth rows are
   the original rows moved by id, and `euler eval` re-indexes the converted file to the same metrics.
"""

import json
import os
import random
import subprocess
import sys
import types

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("authors_interop: skipped: python3-torch is not installed (apt-get install python3-torch)")
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from euler_interop import read_safetensors  # noqa: E402

euler, scratch = sys.argv[1], sys.argv[2]
os.makedirs(scratch, exist_ok=True)


def check(condition, message):
    if not condition:
        print(f"authors_interop: FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def run(*command):
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    check(done.returncode == 0, f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout, done.stderr


def path(name):
    return os.path.join(scratch, name)


class Rotation(nn.Module):
    """delta, b ([1]: the authors' scalars) and the fixed angles alpha[j, t] = j g_t, stored twice."""

    def __init__(self, c):
        super().__init__()
        half, n = c["hidden_size"] // 2, c["MAX_ITEM_LIST_LENGTH"]
        shape = (1,) if c["delta_shape"] == "scalar" else (half,)
        self.delta = nn.Parameter(torch.ones(shape))
        if c["euler_bias"]:
            self.b = nn.Parameter(torch.zeros(shape))
        angles = torch.arange(n, dtype=torch.float64)[:, None] * 10000.0 ** (-2.0 * torch.arange(half) / c["hidden_size"])
        self.alpha = nn.Parameter(torch.stack([angles, angles], -1).float(), requires_grad=False)

    def forward(self, x, query):
        re, im = x[..., 0::2], x[..., 1::2]
        magnitude, phase = torch.sqrt(re * re + im * im), torch.atan2(im, re)
        phase = self.delta * phase + self.alpha[: x.shape[-2], :, 0]
        if query and hasattr(self, "b"):
            phase = phase + self.b
        return torch.stack([magnitude * torch.cos(phase), magnitude * torch.sin(phase)], -1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.heads = c["n_heads"]
        self.query, self.key, self.value, self.dense = (nn.Linear(d, d) for _ in range(4))
        self.LayerNorm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.euler = Rotation(c)
        self.w = nn.Parameter(torch.ones(d // 2))  # the contrastive loss's weights (not used for scores)

    def forward(self, x, mask):
        B, N, d = x.shape
        q, k, v = self.euler(self.query(x), True), self.euler(self.key(x), False), self.value(x)
        split = lambda t: t.view(B, N, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        logits = split(q) @ split(k).transpose(-1, -2) / (d // self.heads) ** 0.5 + mask
        context = (torch.softmax(logits, -1) @ split(v)).transpose(1, 2).reshape(B, N, d)
        return self.LayerNorm(self.dense(context) + x)


class FeedForward(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense_1 = nn.Linear(c["hidden_size"], c["inner_size"])
        self.dense_2 = nn.Linear(c["inner_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, x):
        return self.LayerNorm(self.dense_2(torch.nn.functional.gelu(self.dense_1(x))) + x)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.multi_head_attention, self.feed_forward = Attention(c), FeedForward(c)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList(Layer(c) for _ in range(c["n_layers"]))


class AuthorsSASRec(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, n = c["hidden_size"], c["MAX_ITEM_LIST_LENGTH"]
        self.item_embedding = nn.Embedding(c["n_items"], d, padding_idx=0)
        self.position_embedding = nn.Embedding(n, d)
        self.rotary_embedding = nn.Embedding(n, d // 2)
        self.trm_encoder = Encoder(c)
        self.LayerNorm = nn.LayerNorm(d, eps=c["layer_norm_eps"])

    def scores(self, history):
        """Full-sort scores [K] after a history (right-padded to N, as RecBole)."""
        n = self.position_embedding.weight.shape[0]
        ids = torch.tensor([history[-n:] + [0] * (n - len(history[-n:]))])
        x = self.item_embedding(ids) + self.position_embedding.weight
        psi = self.rotary_embedding.weight
        re, im = x[..., 0::2], x[..., 1::2]
        x = torch.stack([re * torch.cos(psi) - im * torch.sin(psi), re * torch.sin(psi) + im * torch.cos(psi)], -1).flatten(-2)
        x = self.LayerNorm(x)
        causal = torch.tril(torch.ones(n, n, dtype=torch.bool)) & (ids != 0)[:, None, None, :]
        mask = (~causal).float() * -10000.0
        for layer in self.trm_encoder.layer:
            x = layer.feed_forward(layer.multi_head_attention(x, mask))
        return x[0, len(history[-n:]) - 1] @ self.item_embedding.weight.T


# 1. a small model trained by euler: 40 users over 15 items, N = 6, 2 layers of 2 heads
data = path("data.txt")
rng = random.Random(5)
with open(data, "w") as f:
    for u in range(40):
        f.write(" ".join([str(100 + u)] + [str(3 + rng.randrange(15)) for _ in range(5 + u % 6)]) + "\n")
filters = ["--format", "sequences", "--min-user", "0", "--min-item", "0"]
run(euler, "train", "--data", data, *filters, "--max-len", 6, "--hidden", 8, "--inner", 16, "--layers", 2, "--heads", 2,
    "--epochs", 2, "--batch-size", 64, "--lr", 0.01, "--quiet", "--out", path("run"))
original = path("run/best.safetensors")
tensors, metadata = read_safetensors(original)
config = json.loads(metadata["config"])
tokens = json.loads(metadata["item_tokens"])
check(tensors["trm_encoder.layer.0.multi_head_attention.euler.delta"].shape == (1,), "delta is stored as [1]")

# 2. the authors' structure loads the converted state_dict strictly and scores as euler does
run(sys.executable, os.path.join(ROOT, "scripts/euler_to_authors.py"), original, path("model.pth"))
state = torch.load(path("model.pth"))
model = AuthorsSASRec(config)
model.load_state_dict(state, strict=True)
model.eval()
checked = 0
with torch.no_grad():
    for history in (["3", "7", "12"], ["5", "5", "9", "16", "4", "8"], ["10", "4", "6", "3", "11", "14", "17", "8"]):
        printed, _ = run(euler, "recommend", "--checkpoint", original, "--history", " ".join(history), "--k", len(tokens) - 1)
        ours = json.loads(printed)
        theirs = model.scores([tokens.index(t) for t in history])
        for item, score in zip(ours["items"], ours["scores"]):
            expected = float(theirs[tokens.index(item)])
            check(abs(score - expected) <= 1e-5 * max(1.0, abs(expected)), f"score of item {item} after {history}: euler {score}, "
                  f"the authors' structure {expected}")
            checked += 1
check(checked == 3 * (len(tokens) - 1), f"compared {checked} scores")

# 3. back to euler: bit-identical tensors, the same metrics
with open(path("items.txt"), "w") as f:
    f.write("\n".join(["[PAD]"] + tokens[1:]) + "\n")
with open(path("config.json"), "w") as f:
    json.dump(config, f)
run(sys.executable, os.path.join(ROOT, "scripts/authors_to_euler.py"), path("model.pth"), path("back.safetensors"),
    "--items", path("items.txt"), "--config", path("config.json"))
back, back_metadata = read_safetensors(path("back.safetensors"))
model_tensors = {k: v for k, v in tensors.items() if k not in ("optimizer.moment1", "optimizer.moment2", "best.values")}
check(sorted(back) == sorted(model_tensors), f"tensor names after the round trip: {sorted(set(back) ^ set(model_tensors))}")
for name, t in model_tensors.items():
    check(back[name].dtype == t.dtype and back[name].shape == t.shape and torch.equal(back[name], t), f"{name} after the round trip")
check(json.loads(back_metadata["item_tokens"]) == tokens, "item ids after the round trip")
metrics, _ = run(euler, "eval", "--checkpoint", original, "--data", data, *filters)
again, _ = run(euler, "eval", "--checkpoint", path("back.safetensors"), "--data", data, *filters)
check(json.loads(metrics) == json.loads(again), f"eval differs after the round trip:\n{metrics}{again}")

# ... and from RecBole's checkpoint dict, whose Config class only this process knows
for name in ("recbole", "recbole.config", "recbole.config.configurator"):
    sys.modules[name] = types.ModuleType(name)
module = sys.modules["recbole.config.configurator"]


class Config:
    def __init__(self, values):
        self.final_config_dict = values


Config.__module__ = module.__name__
module.Config = Config
recbole_config = {k: config[k] for k in ("n_heads", "hidden_dropout_prob", "attn_dropout_prob", "hidden_act", "layer_norm_eps",
                                         "initializer_range", "init_factor", "tep", "lamb")}
recbole_config["tep"] = 0.25  # a value no default has: it must come from the pickled Config
torch.save({"config": Config(recbole_config), "epoch": 2, "state_dict": state, "other_parameter": None}, path("recbole.pth"))
run(sys.executable, os.path.join(ROOT, "scripts/authors_to_euler.py"), path("recbole.pth"), path("from_recbole.safetensors"),
    "--items", path("items.txt"))
from_recbole, from_recbole_metadata = read_safetensors(path("from_recbole.safetensors"))
check(json.loads(from_recbole_metadata["config"])["tep"] == 0.25, "the settings of RecBole's pickled Config")
check(all(torch.equal(from_recbole[k], v) for k, v in model_tensors.items()), "tensors through RecBole's checkpoint dict")
again, _ = run(euler, "eval", "--checkpoint", path("from_recbole.safetensors"), "--data", data, *filters)
check(json.loads(metrics) == json.loads(again), "eval through RecBole's checkpoint dict")

# 4. RecBole's numbering: another order of the same items
shuffled = tokens[1:]
random.Random(1).shuffle(shuffled)
with open(path("shuffled.txt"), "w") as f:
    f.write("\n".join(["[PAD]"] + shuffled) + "\n")
run(sys.executable, os.path.join(ROOT, "scripts/euler_to_authors.py"), original, path("shuffled.pth"), "--items", path("shuffled.txt"))
table, moved = tensors["item_embedding.weight"], torch.load(path("shuffled.pth"))["item_embedding.weight"]
check(torch.equal(moved[0], table[0]), "the padding row stays row 0")
for row, token in enumerate(shuffled, start=1):
    check(torch.equal(moved[row], table[tokens.index(token)]), f"RecBole row {row} (item {token})")
run(sys.executable, os.path.join(ROOT, "scripts/authors_to_euler.py"), path("shuffled.pth"), path("shuffled.safetensors"),
    "--items", path("shuffled.txt"), "--config", path("config.json"))
again, notes = run(euler, "eval", "--checkpoint", path("shuffled.safetensors"), "--data", data, *filters)
check(json.loads(metrics) == json.loads(again), f"eval of the re-indexed model differs:\n{metrics}{again}")
check("items re-indexed" in notes, f"eval says it re-indexed the items: {notes}")
print(f"authors_interop: ok ({checked} scores, {len(model_tensors)} tensors)")
