"""The training loss: next-token cross-entropy, optionally with a fill's two decisions counted more: where
a middle ends (each end-of-text target) and where it begins (each middle's first target)."""

from __future__ import annotations

from argparse import Namespace

import torch
import torch.nn.functional as F

from training.train_nano_starcoder import weighted_loss

END = 0
LABELS = torch.tensor([[-100, 3, END, 5, -100, 2], [-100, END, 4, 4, 1, END]])
STARTS = torch.tensor([[False, True, False, False, False, False], [False, False, False, True, False, False]])


def losses_and_loss(end: float, start: float) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 8)
    each = F.cross_entropy(logits[:, :-1].reshape(-1, 8), LABELS[:, 1:].reshape(-1), ignore_index=-100,
                           reduction="none").reshape(2, 5)
    weighted = weighted_loss(logits, LABELS, STARTS, END, Namespace(end_of_text_weight=end, middle_start_weight=start))
    return each, weighted


def test_weights_of_one_give_the_plain_mean():
    each, weighted = losses_and_loss(1.0, 1.0)
    assert torch.allclose(weighted, each[LABELS[:, 1:] != -100].mean())


def test_ends_and_starts_count_as_often_as_their_weights():
    each, weighted = losses_and_loss(10.0, 4.0)
    targets = LABELS[:, 1:]
    ends, starts = targets == END, STARTS[:, 1:]
    others = (targets != -100) & ~ends & ~starts
    expected = (each[others].sum() + 10 * each[ends].sum() + 4 * each[starts].sum()) / (
        others.sum() + 10 * ends.sum() + 4 * starts.sum())
    assert torch.allclose(weighted, expected)
