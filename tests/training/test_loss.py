"""The training loss: plain next-token cross-entropy, with end-of-text targets counted more (v7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.train_nano_starcoder import weighted_loss

END = 0


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 8)
    labels = torch.tensor([[-100, 3, END, 5, -100, 2], [-100, END, 4, 4, 1, END]])
    return logits, labels


def test_weight_one_is_the_models_own_loss():
    logits, labels = batch()
    plain = F.cross_entropy(logits[:, :-1].reshape(-1, 8), labels[:, 1:].reshape(-1), ignore_index=-100)
    assert torch.allclose(weighted_loss(logits, labels, END, 1.0), plain)


def test_an_end_of_text_target_counts_as_often_as_its_weight():
    logits, labels = batch()
    losses = F.cross_entropy(logits[:, :-1].reshape(-1, 8), labels[:, 1:].reshape(-1), ignore_index=-100,
                             reduction="none")
    targets = labels[:, 1:].reshape(-1)
    ends, others = losses[targets == END], losses[(targets != END) & (targets != -100)]
    expected = (others.sum() + 10 * ends.sum()) / (len(others) + 10 * len(ends))
    assert torch.allclose(weighted_loss(logits, labels, END, 10.0), expected)
