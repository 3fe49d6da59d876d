#!/usr/bin/env python3
"""scripts/euler_to_authors.py: an euler checkpoint as the EulerFormer authors' PyTorch state_dict.

    python3 scripts/euler_to_authors.py run/best.safetensors model.pth [--items items.txt]

Writes a .pth holding the state_dict of the authors' SASRec-EulerFormer (RecBole's module names, a
scalar delta and b as [1], each layer's euler.alpha), which their model loads with
`model.load_state_dict(torch.load('model.pth'), strict=True)`, and prints the model settings to give
RecBole (n_layers, hidden_size, ...). With --items (RecBole's item ids in id order, one per line, the
padding first: see authors_to_euler.py) the item table's rows are moved to RecBole's numbering by
item id; without it they keep euler's, which is RecBole's only when both read the same ids in the same
order. A training checkpoint's optimizer state and best weights are not part of the model and are left
out. Tensors are copied bit for bit.
"""

import argparse
import collections
import json
import sys

import torch

from euler_interop import euler_item_tokens, fail, read_safetensors, read_token_list

TRAINING_STATE = ("optimizer.moment1", "optimizer.moment2", "best.values")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="an euler checkpoint (best.safetensors, or a model converted before)")
    parser.add_argument("out", help="the .pth to write")
    parser.add_argument("--items", help="RecBole's item ids in id order, one per line ([PAD] first)")
    args = parser.parse_args()

    tensors, metadata = read_safetensors(args.checkpoint)
    if "config" not in metadata:
        fail(f"{args.checkpoint}: no 'config' in the metadata: not an euler checkpoint")
    config = json.loads(metadata["config"])
    if config.get("pos") != "euler":
        fail(f"{args.checkpoint}: pos {config.get('pos')}; the authors' model is EulerFormer (pos euler)")
    state = collections.OrderedDict((k, v) for k, v in tensors.items() if k not in TRAINING_STATE)

    if args.items:
        recbole = read_token_list(args.items)
        ours = euler_item_tokens(metadata, args.checkpoint)
        if ours is None:
            fail(f"{args.checkpoint}: no item ids in the metadata ('item_tokens'), so rows cannot be moved by id")
        row_of = {t: i for i, t in enumerate(ours) if i > 0}
        missing = [t for t in recbole[1:] if t not in row_of]
        if missing:
            fail(f"{args.items}: {len(missing)} item ids are not in {args.checkpoint}, the first '{missing[0]}'")
        table = state["item_embedding.weight"]
        order = [0] + [row_of[t] for t in recbole[1:]]
        if config.get("backbone") == "bert4rec":
            order.append(table.shape[0] - 1)  # the mask token stays last
        state["item_embedding.weight"] = table[torch.tensor(order)].clone()
        left = len(ours) - len(recbole)
        if left > 0:
            print(f"euler_to_authors: {left} items of {args.checkpoint} are not in {args.items} and are left out",
                  file=sys.stderr)

    torch.save(state, args.out)
    recbole_keys = {k: config[k] for k in ("n_layers", "n_heads", "hidden_size", "inner_size", "hidden_dropout_prob",
                                            "attn_dropout_prob", "hidden_act", "layer_norm_eps", "initializer_range",
                                            "MAX_ITEM_LIST_LENGTH", "init_factor", "euler_bias", "tep", "lamb") if k in config}
    print(json.dumps({"out": args.out, "tensors": len(state), "recbole_config": recbole_keys}))


if __name__ == "__main__":
    main()
