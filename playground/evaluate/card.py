"""Published HumanEval pass@1 figures, read from each registry entry's ``[card]`` table in ``models/``."""

from __future__ import annotations

from dataclasses import dataclass

from playground.registry import find_spec, load_registry


@dataclass(frozen=True)
class CardScore:
    model: str  # registry id
    hub_id: str
    pass_at_1: float  # HumanEval (Python), as a fraction
    source: str
    approximate: bool = False  # rounded or read off a chart; compare loosely

    def label(self) -> str:
        figure = f"{'~' if self.approximate else ''}{self.pass_at_1:.3f}"
        return f"{figure} ({self.source})"


def card_score(model: str) -> CardScore | None:
    """The published figure for a registry id or hub id; None when there is none (e.g. nano-starcoder)."""
    spec = find_spec(load_registry(), model.rstrip("/"))
    if spec is None or spec.card is None:
        return None
    card = spec.card
    return CardScore(spec.id, spec.source, card.humaneval_pass_at_1, card.source, card.approximate)
