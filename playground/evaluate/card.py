"""Published HumanEval pass@1 figures for the models in the registry, each with its source.

These belong in the ``models/*.toml`` registry entries, but today's
``playground.registry`` rejects keys it does not know, so a ``[card]`` table
there would stop the app from starting. They live here until the registry
accepts one; docs/evaluate.md shows the TOML to move them to.
"""

from __future__ import annotations

from dataclasses import dataclass

STARCODER_PAPER = "StarCoder paper (Li et al. 2023, arXiv:2305.06161)"
STARCODER2_PAPER = "StarCoder2 paper (Lozhkov et al. 2024, arXiv:2402.19173)"


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


PUBLISHED: tuple[CardScore, ...] = (
    CardScore("starcoder", "bigcode/starcoder", 0.336,
              "bigcode/starcoder model card (model-index) and " + STARCODER_PAPER),
    CardScore("starcoderbase", "bigcode/starcoderbase", 0.304, STARCODER_PAPER),
    CardScore("starcoder2-15b", "bigcode/starcoder2-15b", 0.463, STARCODER2_PAPER),
    CardScore("starcoder2-7b", "bigcode/starcoder2-7b", 0.354, STARCODER2_PAPER),
    CardScore("starcoder2-3b", "bigcode/starcoder2-3b", 0.317, STARCODER2_PAPER),
    CardScore("santacoder", "bigcode/santacoder", 0.18,
              "bigcode/santacoder model card (MultiPL-E HumanEval Python, given to two digits)", approximate=True),
    CardScore("tiny_starcoder_py", "bigcode/tiny_starcoder_py", 0.0784, "bigcode/tiny_starcoder_py model card"),
)


def card_score(model: str) -> CardScore | None:
    """The published figure for a registry id or hub id; None when there is none (e.g. nano-starcoder)."""
    name = model.rstrip("/")
    for score in PUBLISHED:
        if name in (score.model, score.hub_id):
            return score
    return None
