#!/usr/bin/env python3
"""scripts/authors_to_euler.py: the EulerFormer authors' trained model (.pth) as an euler checkpoint.

    python3 scripts/authors_to_euler.py MODEL.pth OUT.safetensors --items items.txt [--config ml.yaml]
    ./build/bin/euler eval --checkpoint OUT.safetensors --data ml-1m.inter

MODEL.pth is RecBole's checkpoint of the authors' SASRec-EulerFormer (saved/SASRec-*.pth, opened
without RecBole) or a bare state_dict. --items is RecBole's item ids in id order, one per line, the
first line its padding token; write it once from the dataset the model was trained on:

    open('items.txt', 'w').write('\\n'.join(dataset.field2id_token['item_id']) + '\\n')

euler stores them as the checkpoint's item ids, and `euler eval` / `euler recommend` re-index the rows
to the data file by id (RecBole numbers items by first appearance, euler as its reader does). The model
settings come from the checkpoint's RecBole config; --config (RecBole YAML or euler JSON) fills or
overrides them; what neither says takes RecBole's SASRec default, and is printed. Shapes (layers, d,
N, inner size, scalar or vector delta, b) are read from the tensors. Tensors are copied bit for bit
(a scalar as [1], each layer's euler.alpha, which euler checks against its own angles).
"""

import argparse
import json
import re
import sys

import torch

from euler_interop import RECBOLE_MODEL_DEFAULTS, fail, load_pth, read_config_file, read_token_list, write_safetensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="the authors' .pth (RecBole checkpoint or state_dict)")
    parser.add_argument("out", help="the euler checkpoint to write (.safetensors)")
    parser.add_argument("--items", required=True, help="RecBole's item ids in id order, one per line ([PAD] first)")
    parser.add_argument("--config", help="a RecBole YAML or euler JSON config for what the checkpoint does not say")
    parser.add_argument("--backbone", choices=["sasrec", "bert4rec"], help="default: from the config's model, else sasrec")
    args = parser.parse_args()

    state, stored = load_pth(args.model)
    config = dict(stored)
    if args.config:
        config.update(read_config_file(args.config))
    if "item_embedding.weight" not in state:
        fail(f"{args.model}: no item_embedding.weight: not a SASRec/BERT4Rec model")
    layers = sorted({int(m.group(1)) for k in state for m in [re.match(r"trm_encoder\.layer\.(\d+)\.", k)] if m})
    if layers != list(range(len(layers))) or not layers:
        fail(f"{args.model}: its transformer layers are not numbered 0..L-1 ({layers})")
    rows, d = state["item_embedding.weight"].shape
    mha0 = "trm_encoder.layer.0.multi_head_attention."
    if mha0 + "euler.delta" not in state:
        fail(f"{args.model}: no {mha0}euler.delta: not the authors' EulerFormer (euler converts only that model)")
    delta_shape = "scalar" if state[mha0 + "euler.delta"].numel() == 1 else "vector"

    tokens = read_token_list(args.items)
    backbone = args.backbone or ("bert4rec" if str(config.get("model", "")).lower() == "bert4rec" else "sasrec")
    n_items = rows - (1 if backbone == "bert4rec" else 0)
    if len(tokens) != n_items:
        fail(f"{args.items}: {len(tokens)} lines (padding included), but the model's item table has {n_items} rows")

    euler_config = {
        "n_layers": len(layers), "hidden_size": int(d),
        "inner_size": int(state["trm_encoder.layer.0.feed_forward.dense_1.weight"].shape[0]),
        "MAX_ITEM_LIST_LENGTH": int(state["position_embedding.weight"].shape[0]) if "position_embedding.weight" in state
        else int(config.get("MAX_ITEM_LIST_LENGTH", 50)),
        "n_items": int(n_items), "backbone": backbone, "pos": "euler", "delta_shape": delta_shape,
        "euler_bias": (mha0 + "euler.b") in state, "input_rotary": "rotary_embedding.weight" in state,
        "absolute_positions": "position_embedding.weight" in state,
        "padding_idx": True,  # RecBole's nn.Embedding(padding_idx=0): `euler grad` gives the authors' gradients
    }
    defaulted = []
    for key, fallback in RECBOLE_MODEL_DEFAULTS.items():
        if key in config:
            euler_config[key] = config[key]
        else:
            euler_config[key] = fallback
            defaulted.append(f"{key} {fallback}")
    if defaulted:
        print(f"authors_to_euler: not in the checkpoint's config or --config, RecBole's defaults: {', '.join(defaulted)}",
              file=sys.stderr)

    # The authors' tensors, bit for bit; euler's loader checks names, shapes and alpha.
    tensors = {name: t.detach().cpu() for name, t in state.items()}
    metadata = {"format": "pt", "format_version": "1", "config": json.dumps(euler_config),
                "item_tokens": json.dumps(tokens), "converted_from": args.model}
    write_safetensors(args.out, tensors, metadata)
    print(json.dumps({"out": args.out, "tensors": len(tensors), "items": n_items - 1, "config": euler_config}))


if __name__ == "__main__":
    main()
