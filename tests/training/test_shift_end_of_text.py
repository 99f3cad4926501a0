"""Moving the end-of-text logit by a constant: exact for every context, nothing else changes, and the copy
loads through transformers like any checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from training.shift_end_of_text import shift_checkpoint

from ..conftest import NANO

CONTEXTS = ["def add(a, b):\n    return a + b\n", "<fim_prefix><fim_suffix>\n    return x\n<fim_middle>def f(x):\n"]


def test_the_shift_moves_end_of_text_alone_by_exactly_the_shift(tmp_path):
    shift_checkpoint(NANO, tmp_path / "shifted", -1.5)
    assert json.loads((tmp_path / "shifted" / "config.json").read_text())["tie_word_embeddings"] is False
    tokenizer = AutoTokenizer.from_pretrained(NANO)
    before = AutoModelForCausalLM.from_pretrained(NANO).eval()
    after = AutoModelForCausalLM.from_pretrained(tmp_path / "shifted").eval()
    for text in CONTEXTS:
        ids = tokenizer(text, return_tensors="pt").input_ids
        with torch.inference_mode():
            moved = after(ids).logits - before(ids).logits
        assert torch.allclose(moved[..., 0], torch.full_like(moved[..., 0], -1.5), atol=1e-4)
        assert moved[..., 1:].abs().max() == 0  # every other token's logit is untouched
    # The input side is untouched too: end-of-text as input embeds as it did.
    assert torch.equal(after.get_input_embeddings().weight, before.get_input_embeddings().weight)


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="not a GPT-BigCode"):
        shift_checkpoint(tmp_path / "src", tmp_path / "dest", -1.0)
