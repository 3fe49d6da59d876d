"""scripts/euler_interop.py: what scripts/authors_to_euler.py and scripts/euler_to_authors.py share.

euler's checkpoints are safetensors files whose tensors carry the names and shapes of the EulerFormer
authors' PyTorch modules (RecBole's SASRec with their EulerFormer attention; docs/model.md, "Checkpoints
and names"): a scalar delta or b is stored as [1], each layer has the authors' fixed angle table
euler.alpha. So converting is a matter of the container (.pth <-> .safetensors), the configuration
(RecBole's config object <-> euler's JSON under the metadata key "config") and the item rows: euler
numbers items as its data reader does and stores each row's raw id in the metadata "item_tokens";
RecBole numbers them by first appearance (pd.factorize), so rows are moved by item id, never by
position. Needs Debian's python3-torch (and python3-yaml for a YAML config).
"""

import json
import os
import pickle
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}
NAMES = {v: k for k, v in DTYPES.items()}

# The configuration keys a converted model needs, with RecBole's defaults (SASRec's model defaults,
# the authors' EulerFormer keys), used where neither the checkpoint nor --config gives them.
RECBOLE_MODEL_DEFAULTS = {"n_heads": 2, "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5, "hidden_act": "gelu",
                          "layer_norm_eps": 1e-12, "initializer_range": 0.02, "init_factor": 1.0, "tep": 1.0,
                          "lamb": 1e-5}


def fail(message):
    print(f"{os.path.basename(sys.argv[0])}: error: {message}", file=sys.stderr)
    sys.exit(1)


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file: name -> torch tensor (copied), metadata dict."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(f"{path}: cannot read: {e.strerror}")
    if len(data) < 8:
        fail(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        fail(f"{path}: not a safetensors file (header length {size} beyond the file)")
    try:
        header = json.loads(data[8:8 + size])
    except ValueError as e:
        fail(f"{path}: the safetensors header is not JSON: {e}")
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + size
    tensors = {}
    for name, info in header.items():
        dtype = DTYPES.get(info.get("dtype"))
        if dtype is None:
            fail(f"{path}: tensor '{name}' has dtype {info.get('dtype')}, not one of {', '.join(DTYPES)}")
        begin, end = info["data_offsets"]
        raw = bytearray(data[base + begin:base + end])
        tensors[name] = torch.frombuffer(raw, dtype=dtype).reshape(info["shape"]).clone() if raw else \
            torch.zeros(info["shape"], dtype=dtype)
    return tensors, metadata


def write_safetensors(path, tensors, metadata):
    """Writes name -> tensor (in the given order) and a string -> string metadata dict, atomically."""
    header, chunks, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        raw = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    temporary = path + ".tmp"
    with open(temporary, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)
    os.replace(temporary, path)


def euler_item_tokens(metadata, path):
    """The raw item ids of an euler checkpoint's rows ([0] = "" for padding), or None."""
    if "item_tokens" in metadata:
        return json.loads(metadata["item_tokens"])
    if "item_tokens_hex" in metadata:
        return [bytes.fromhex(t).decode("utf-8", errors="surrogateescape") for t in json.loads(metadata["item_tokens_hex"])]
    return None


def read_token_list(path):
    """RecBole's item ids in id order, one per line, line 1 the padding ([PAD]); e.g. written with
    open('items.txt', 'w').write('\\n'.join(dataset.field2id_token['item_id']) + '\\n')."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            tokens = f.read().split("\n")
    except OSError as e:
        fail(f"{path}: cannot read: {e.strerror}")
    if tokens and tokens[-1] == "":
        tokens.pop()
    if len(tokens) < 2:
        fail(f"{path}: expected the padding token ([PAD]) and at least one item id, one per line")
    seen = set()
    for line, token in enumerate(tokens[1:], start=2):
        if token in seen:
            fail(f"{path}:{line}: item id '{token}' appears twice")
        seen.add(token)
    return ["" if i == 0 else t for i, t in enumerate(tokens)]


class _Stub:
    """Stands in for a class the pickle names but this machine lacks (RecBole's Config, its enums),
    keeping what it was built from, so a RecBole checkpoint opens without RecBole installed."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})

    def __getitem__(self, key):  # RecBole's Config: config['hidden_size']
        return self.__dict__.get("final_config_dict", {})[key]


_PythonUnpickler = pickle.Unpickler


class _Unpickler(_PythonUnpickler):
    def find_class(self, module, name):
        if module.split(".")[0] in ("torch", "collections", "numpy", "builtins", "_codecs", "copyreg"):
            return super().find_class(module, name)
        return type(name, (_Stub,), {"__module__": module})


def load_pth(path):
    """(state_dict, recbole_config dict or {}) of a .pth file: a bare state_dict, or RecBole's
    checkpoint {'config': Config, 'state_dict': ..., ...} (opened without RecBole)."""
    # torch.load unpickles with pickle.Unpickler (torch 1.13 ignores a pickle_module argument unless
    # weights_only), so the stand-in goes there for the duration of the load.
    pickle.Unpickler = _Unpickler
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, pickle.UnpicklingError, RuntimeError, EOFError) as e:
        fail(f"{path}: not a PyTorch file this script can read: {e}")
    finally:
        pickle.Unpickler = _PythonUnpickler
    config = {}
    if isinstance(obj, dict) and "state_dict" in obj:
        stored = obj.get("config")
        if stored is not None:
            config = dict(getattr(stored, "final_config_dict", None) or (stored if isinstance(stored, dict) else {}))
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        fail(f"{path}: holds neither a state_dict nor RecBole's checkpoint (a dict with 'state_dict')")
    return dict(obj), config


def read_config_file(path):
    """A RecBole YAML or an euler JSON config file as a dict."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        fail(f"{path}: cannot read: {e.strerror}")
    if path.lower().endswith((".yaml", ".yml")):
        import yaml
        try:
            config = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            fail(f"{path}: not valid YAML: {e}")
    else:
        try:
            config = json.loads(text)
        except ValueError as e:
            fail(f"{path}: not valid JSON: {e}")
    if not isinstance(config, dict):
        fail(f"{path}: expected a mapping of configuration keys")
    return config
