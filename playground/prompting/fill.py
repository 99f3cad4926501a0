"""Fill-in-the-middle mode: code with one ``<FILL_HERE>`` hole becomes a FIM prompt.

The prompt is prefix-suffix-middle order, or suffix-prefix-middle where the
model's entry asks for it (``fim_order``). Whitespace around the hole is kept
byte for byte, because it changes what the model writes. When the code does
not fit, the prefix *text* is trimmed from the top (whole lines), then the
suffix from the bottom; the token sequence is never cut, so ``<fim_prefix>``
always survives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from playground.errors import FillMarkerError, InputError
from playground.prompt import Prompt, Special
from playground.prompting.budget import Budget, TokenCounter, check_text, reply_notice, too_long
from playground.prompting.prepared import Prepared, Spent
from playground.prompting.repo_context import NO_CONTEXT, RepoContext, check_filename, fit_context
from playground.registry import ModelSpec

FILL_MARKER = "<FILL_HERE>"
_MIN_ECHO_CHARS = 12  # shorter overlaps are too likely to be legitimate code


@dataclass(frozen=True)
class Hole:
    """The user's code around the hole, and whether the middle ends at the hole's scope (``fill_end``)."""

    prefix: str
    suffix: str
    end_at_scope: bool = True


def split_hole(code: str) -> tuple[str, str]:
    holes = code.count(FILL_MARKER)
    if holes == 0:
        raise FillMarkerError(
            f"Mark the place to fill with {FILL_MARKER}: the code has no such marker. "
            "Put it where the model should write code."
        )
    if holes > 1:
        raise FillMarkerError(
            f"The code has {holes} {FILL_MARKER} markers; exactly one hole is supported. "
            "Keep the one you want filled and remove the others."
        )
    prefix, suffix = code.split(FILL_MARKER)
    return prefix, suffix


def _fim_prompt(spec: ModelSpec, prefix: str, suffix: str, filename: str, context: list[Special | str]) -> Prompt:
    """The FIM prompt in the model's order, the repository context (already in its format) before it."""
    assert spec.fim is not None
    header: list[Special | str] = []
    if filename and spec.filename_token:
        header = [Special(spec.filename_token), filename + "\n"]
    elif filename and context and spec.repo_format == "starcoder2":  # the edited file's path opens its document
        header = [filename + "\n"]
    # Comments are part of the edited file, so they open its prefix; metadata documents come before the fill's.
    before, opening = ([], context) if spec.repo_format == "comments" else (context, [])
    fim = spec.fim
    if fim.order == "spm":  # StarCoder's SPM variant: the middle sentinel sits between suffix and prefix
        return Prompt.of(*before, Special(fim.prefix), Special(fim.suffix), suffix, Special(fim.middle), *header,
                         *opening, prefix)
    # The middle continues the prefix, which here sits before the suffix: token healing works on it there.
    prompt = Prompt.of(*before, Special(fim.prefix), *header, *opening, prefix, Special(fim.suffix), suffix,
                       Special(fim.middle))
    return replace(prompt, resumes=prompt.segments.index(Special(fim.suffix)) - 1 if prefix else None)


def build_fill(code: str, filename: str, spec: ModelSpec, budget: Budget, count: TokenCounter, *,
               end_at_scope: bool = True, context: RepoContext = NO_CONTEXT) -> Prepared[Hole]:
    """The fill of the one ``<FILL_HERE>`` hole in ``code``."""
    check_text("The code", code)
    prefix, suffix = split_hole(code)
    return fill_around(prefix, suffix, filename, spec, budget, count, end_at_scope=end_at_scope, context=context)


def fill_around(prefix: str, suffix: str, filename: str, spec: ModelSpec, budget: Budget, count: TokenCounter, *,
                end_at_scope: bool = True, context: RepoContext = NO_CONTEXT) -> Prepared[Hole]:
    """The fill between ``prefix`` and ``suffix``: the lines nearest the hole first, then the repository
    context in what they leave of the budget."""
    check_text("The code", prefix + suffix, allow_empty=True)
    check_filename(filename)
    if spec.fim is None:
        raise InputError(f"{spec.id} was not trained for fill-in-the-middle. "
                         "Use completion mode, or pick a StarCoder model.")
    use_filename = bool(filename and spec.filename_token)
    fixed = 3 + (1 + count(filename + "\n") if use_filename else 0)  # the FIM specials and the header
    near = _near_the_hole(prefix, suffix, budget.prompt_tokens - fixed, count)
    if fixed + near.tokens > budget.prompt_tokens:
        raise too_long("The code around the hole", fixed + near.tokens, budget,
                       "Shorten the lines next to the hole, or lower max_new_tokens.")
    fitted = fit_context(spec, context, filename, budget.prompt_tokens - fixed - near.tokens, count)
    total = fixed + near.tokens + fitted.tokens
    header = filename if use_filename or fitted.segments else ""
    reply = budget.reply_for(total)
    spent = (*near.spent, *fitted.spent, Spent("reply", reply, f"up to {reply} new tokens"))
    return Prepared(
        _fim_prompt(spec, near.prefix, near.suffix, header, fitted.segments),
        reply,
        Hole(prefix, suffix, end_at_scope),  # the user's code around the hole, split once
        notices=near.notices + ((fitted.notice,) if fitted.notice else ()) + reply_notice(budget, total),
        spent=spent,
    )


@dataclass(frozen=True)
class _Near:
    """The prefix and suffix as they fit: whole, or without the lines farthest from the hole."""

    prefix: str
    suffix: str
    tokens: int
    spent: tuple[Spent, Spent]
    notices: tuple[str, ...]


def _near_the_hole(prefix: str, suffix: str, room: int, count: TokenCounter) -> _Near:
    prefix_lines = prefix.splitlines(keepends=True)
    suffix_lines = suffix.splitlines(keepends=True)
    prefix_counts = [count(line) for line in prefix_lines]
    suffix_counts = [count(line) for line in suffix_lines]
    total = sum(prefix_counts) + sum(suffix_counts)
    dropped_prefix = dropped_suffix = 0
    # Keep the lines touching the hole: without them the model cannot know what belongs there.
    while total > room and len(prefix_lines) - dropped_prefix > 1:
        total -= prefix_counts[dropped_prefix]
        dropped_prefix += 1
    while total > room and len(suffix_lines) - dropped_suffix > 1:
        dropped_suffix += 1
        total -= suffix_counts[-dropped_suffix]
    kept_prefix = len(prefix_lines) - dropped_prefix
    kept_suffix = len(suffix_lines) - dropped_suffix
    notices = []
    if dropped_prefix:
        notices.append(f"Only the last {kept_prefix} lines above the hole fit the context; "
                       f"the first {dropped_prefix} were left out of the prompt.")
    if dropped_suffix:
        notices.append(f"Only the first {kept_suffix} lines below the hole fit the context; "
                       f"the last {dropped_suffix} were left out of the prompt.")
    spent = (Spent("prefix", sum(prefix_counts[dropped_prefix:]), _kept("last", kept_prefix, len(prefix_lines))),
             Spent("suffix", sum(suffix_counts[:kept_suffix]), _kept("first", kept_suffix, len(suffix_lines))))
    return _Near("".join(prefix_lines[dropped_prefix:]), "".join(suffix_lines[:kept_suffix]), total, spent,
                 tuple(notices))


def _kept(which: str, kept: int, lines: int) -> str:
    return f"all {lines} lines" if kept == lines else f"{which} {kept} of {lines} lines"


def echo_start(middle: str, suffix: str) -> tuple[int, bool] | None:
    """Where ``middle`` starts repeating the code after the hole, as (index, True); or, while it is
    still being written, where it may yet grow into such a repeat, as (index, False); None otherwise.

    Models sometimes write the middle and then carry on with the suffix; the
    repeat would appear twice once spliced.
    """
    target = suffix.strip()
    if not target:
        return None
    for start in [0] + [i + 1 for i, char in enumerate(middle) if char == "\n"]:
        tail = middle[start:].strip()
        overlap = min(len(tail), len(target))
        if tail[:overlap] == target[:overlap]:  # shorter overlaps are too likely to be legitimate code
            return start, overlap >= min(_MIN_ECHO_CHARS, len(target))
    return None


def strip_suffix_echo(middle: str, suffix: str) -> str:
    """The middle without a repeat of the code after the hole."""
    found = echo_start(middle, suffix)
    return middle[: found[0]] if found and found[1] else middle
