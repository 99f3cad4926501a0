"""The one-screen summary: this deployment's score beside the model card's, and what the gap means.

The expected spread is two binomial standard errors of the card's pass rate
at this many problems: at 164 problems and p = 0.336 that is about ±3.7
points. A faithful deployment lands inside it about 95 % of the time; outside
it, something in the serving path differs from the card's set-up.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from playground.evaluate.passk import standard_error
from playground.evaluate.results import EvaluationResult

SPREAD_SE = 2.0  # standard errors counted as "within the expected spread"

WHAT_TO_CHECK = (
    "dtype: the card was measured in bf16/fp16 at full precision; compare with --dtype bfloat16",
    "quantisation: 8-bit and 4-bit weights can cost points; rerun with --quantize none",
    "special tokens: the prompt must reach the model without an added BOS/EOS or chat template",
    "stop sequences: the engine must stop at \\ndef, \\nclass, \\nif, \\nprint, \\n# and not earlier",
    "prompt trimming: the prompt must be sent exactly as given (HumanEval's prompts end in a newline)",
    "sampling: the card's figure is pass@1 from 20 samples at temperature 0.2, top_p 0.95; greedy differs "
    "by a point or two",
)


@dataclass(frozen=True)
class Verdict:
    standard_error: float
    spread: float  # SPREAD_SE standard errors
    within: bool


def verdict(result: EvaluationResult) -> Verdict | None:
    """None when no comparison is fair: no card figure, or not the card's benchmark."""
    if result.card is None or result.dataset != "HumanEval" or result.delta is None:
        return None
    se = standard_error(result.card.pass_at_1, result.problems)
    return Verdict(se, SPREAD_SE * se, abs(result.delta) <= SPREAD_SE * se)


def _points(fraction: float) -> str:
    return f"{fraction * 100:.1f}"


def summary(result: EvaluationResult) -> str:
    """Plain text, about twenty lines."""
    sampling = "greedy" if result.temperature == 0 else f"temperature {result.temperature:g}"
    lines = [
        f"{result.dataset} on {result.model} ({result.backend}, dtype {result.dtype or '?'}, "
        f"quantisation {result.quantization or 'none'}, revision {result.revision or '-'})",
        f"{result.problems} problems x {result.samples} sample(s), {sampling}, "
        f"max {result.settings.get('max_new_tokens', '?')} new tokens",
    ]
    solved = sum(1 for problem in result.per_problem if problem.passed)
    for k, value in sorted(result.pass_at.items()):
        note = f"  ({solved} of {result.problems} problems solved at least once)" if k == 1 else ""
        lines.append(f"pass@{k:<3} {value:.3f}{note}")
    lines += _comparison(result)
    lines += _breakdown(result)
    timings = result.timings
    lines.append(f"time     {timings.get('wall_s', 0):.1f} s (generation {timings.get('generation_s', 0):.1f} s, "
                 f"execution {timings.get('execution_s', 0):.1f} s, summed over workers)")
    lines.append(f"sandbox  {result.sandbox}")
    return "\n".join(lines)


def _comparison(result: EvaluationResult) -> list[str]:
    card = result.card
    if card is None:
        return [f"card     no published HumanEval figure for {result.model}; nothing to compare with"]
    lines = [f"card     pass@1 {card.label()}"]
    judged = verdict(result)
    if judged is None:
        return lines + [f"         not comparable: the card's figure is for HumanEval, this ran {result.dataset}"]
    delta = result.delta or 0.0
    lines.append(f"delta    {'+' if delta >= 0 else '-'}{_points(abs(delta))} points; expected spread "
                 f"±{_points(judged.spread)} points ({SPREAD_SE:g} standard errors of {_points(judged.standard_error)} "
                 f"points at {result.problems} problems)")
    if not result.complete_set:
        lines.append("         only the first problems of the set ran: a subset is not the card's measurement, "
                     "so read this loosely")
    if judged.within:
        lines.append("verdict  WITHIN the expected spread: this deployment is consistent with the model card.")
    else:
        direction = "below" if delta < 0 else "above"
        lines.append(f"verdict  OUTSIDE the expected spread ({direction} the card). Check:")
        lines += [f"         - {item}" for item in WHAT_TO_CHECK]
    return lines


def _breakdown(result: EvaluationResult) -> list[str]:
    """How the failing samples failed, by kind (the text before the first colon)."""
    kinds: Counter[str] = Counter()
    for problem in result.per_problem:
        for error in problem.errors:
            if error is not None:
                kinds[error.split(":", 1)[0]] += 1
    if not kinds:
        return []
    return ["failures " + ", ".join(f"{count} {kind}" for kind, count in kinds.most_common(6))]
