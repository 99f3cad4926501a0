"""Copy a checkpoint with its end-of-text logit moved by a constant, for every context.

    python -m training.shift_end_of_text SOURCE DEST --shift -1.0

A weight of w on one token's loss moves that token's learned odds up by about w wherever the model
is unsure. Adding a (negative) shift to its logit multiplies those odds by e^shift, the same factor
everywhere, and so traces a weighted run's trade between middles that end and lines the suffix helps
without training again (the model card's "Tried after v6" shows those curves). The copy is a regular
transformers checkpoint that the scorer and the playground load as they load any other.

How it stays exact: GPT-BigCode ties its output head to the input embeddings, and the last layer norm
hands the head ``g * n + b`` with ``n`` of zero mean. An output row moved by ``c / g`` (elementwise)
then moves that token's logit by ``c * sum(b / g)`` and by nothing that depends on ``n``. The head is
untied so that end-of-text's input embedding stays as trained (for nano-starcoder 4096 × 256 floats,
4 MB more).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"


def shifted_head(weights: dict[str, torch.Tensor], token_id: int, shift: float) -> torch.Tensor:
    """The output head with ``token_id``'s row moved so that its logit changes by ``shift`` exactly."""
    gain, bias = weights["transformer.ln_f.weight"], weights["transformer.ln_f.bias"]
    reach = float((bias / gain).sum())
    if abs(reach) < 1e-3:
        raise ValueError("the final layer norm's bias cannot carry a constant shift for this checkpoint")
    head = weights.get("lm_head.weight", weights["transformer.wte.weight"]).clone()
    head[token_id] += (shift / reach) / gain
    return head.contiguous()


def shift_checkpoint(source: Path, dest: Path, shift: float) -> None:
    config = json.loads((source / "config.json").read_text())
    if config.get("model_type") != "gpt_bigcode":
        raise ValueError(f"{source} is not a GPT-BigCode checkpoint")
    dest.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file() and path.name not in (WEIGHTS, "config.json"):
            shutil.copy2(path, dest / path.name)
    weights = load_file(source / WEIGHTS)
    weights["lm_head.weight"] = shifted_head(weights, config["eos_token_id"], shift)
    save_file(weights, dest / WEIGHTS, metadata={"format": "pt"})
    config["tie_word_embeddings"] = False
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--shift", type=float, required=True, help="added to the end-of-text logit (nats)")
    args = parser.parse_args()
    shift_checkpoint(args.source, args.dest, args.shift)
    print(f"wrote {args.dest}: end-of-text logit {args.shift:+g}")


if __name__ == "__main__":
    main()
