"""The Generation record: everything about one finished generation, as shown, shared and re-run.

It stays typed (parameters, backend, usage, timings, attribution, tokens,
candidates) until it is written: ``to_dict`` gives the JSON the REST API
returns and the share store keeps, and ``from_dict`` reverses it exactly, for
every share stored so far. A mode may add fields of its own to what the user
sees (``Shown.fields``: fill's middle, say); the record carries them without
knowing their names, at the top level of its JSON as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from playground.attribution import Report
from playground.backends.base import Alternative, TokenInfo
from playground.params import GenerationParams
from playground.prompting.prepared import Spent

DIGITS = 4  # log-probabilities are kept to 1e-4: finer is noise for a person, and bulk for a share


@dataclass(frozen=True)
class Shown:
    """Generated text as the user sees it: ``text`` whole (the reply, the code with its hole filled, the
    continuation), ``generated`` the part the model wrote (what stream deltas join into), and the mode's
    own named parts of it, as the record's JSON lists them."""

    text: str
    generated: str
    fields: Mapping[str, str | None] = field(default_factory=dict)

    @classmethod
    def read(cls, text: str, fields: Mapping[str, Any], generated_field: str | None) -> Shown:
        """As stored: the generated part is the mode's own field when it names one, else the text."""
        generated = fields.get(generated_field, text) if generated_field else text
        return cls(text, generated or "", fields)


@dataclass(frozen=True)
class BackendSummary:
    """Where the generation ran, as a share reports it."""

    kind: str
    endpoint: str | None = None
    dtype: str | None = None
    quantization: str | None = None
    revision: str | None = None
    placement: str | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Timings:
    ttft_ms: float | None = None
    total_ms: float = 0.0
    tokens_per_s: float | None = None  # decode speed after the first token


def tokens_to_json(tokens: list[TokenInfo]) -> list[dict[str, Any]]:
    """Tokens as the record and the stream carry them: ``{"text", "logprob", "top"}``."""
    return [{"text": t.text, "logprob": round(t.logprob, DIGITS),
             "top": [{"text": a.text, "logprob": round(a.logprob, DIGITS)} for a in t.top]} for t in tokens]


def tokens_from_json(data: list[dict[str, Any]]) -> list[TokenInfo]:
    return [TokenInfo(t["text"], t["logprob"], tuple(Alternative(a["text"], a["logprob"]) for a in t.get("top", ())))
            for t in data]


@dataclass
class Candidate:
    """One of several generations from the same prompt, as the record lists it."""

    shown: Shown
    finish_reason: str
    tokens: list[TokenInfo] = field(default_factory=list)
    count: int = 1  # identical candidates are listed once, with how many there were
    mean_logprob: float | None = None
    # Its generated part checked against code indexes, so applying it shows its own matches. None: attribution
    # is off, or the record was made before candidates were checked one by one.
    attribution: Report | None = None

    def to_dict(self, with_tokens: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"text": self.shown.text, **self.shown.fields, "finish_reason": self.finish_reason,
                                "mean_logprob": self.mean_logprob, "count": self.count}
        if with_tokens:
            item["tokens"] = tokens_to_json(self.tokens)
        if self.attribution is not None:
            item["attribution"] = self.attribution.to_dict()
        return item

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], generated_field: str | None) -> Candidate:
        known = {"text", "finish_reason", "mean_logprob", "count", "tokens", "attribution"}
        own = {k: v for k, v in data.items() if k not in known}
        report = Report.from_dict(data["attribution"]) if data.get("attribution") is not None else None
        return cls(Shown.read(data["text"], own, generated_field), data["finish_reason"],
                   tokens_from_json(data.get("tokens") or []), data["count"], data["mean_logprob"], report)


_COLUMNS = ("id", "mode", "model", "created_at", "app_version", "inputs", "raw_prompt", "prompt_version", "params",
            "backend", "text", "finish_reason", "error", "notices", "budget", "usage", "timings", "attribution",
            "tokens", "candidates")


@dataclass
class Generation:
    id: str  # 128-bit random, URL-safe; what POST /api/shares takes
    mode: str  # a mode's name: which mode made it, and restores it
    model: str
    created_at: str  # ISO 8601, UTC, e.g. "2026-11-25T18:40:00.123456+00:00"
    app_version: str
    inputs: dict[str, Any]  # the mode's inputs, as the mode records them
    raw_prompt: str  # exactly what the model was given, special tokens spelled out
    prompt_version: str | None  # Tech Assistant prompt version/hash for chat, else None
    params: GenerationParams  # effective parameters, concrete seed included
    backend: BackendSummary
    shown: Shown = field(default_factory=lambda: Shown("", ""))
    finish_reason: str = "length"  # length | eos | stop | cancelled | error
    error: str | None = None
    notices: list[str] = field(default_factory=list)  # e.g. "dropped 3 example dialogues to fit"
    # Where the prompt's token budget went, part by part (a fill: prefix, suffix, each context file, the
    # reply); None where the mode does not say, and in records made before it did (so they read back exactly).
    budget: list[Spent] | None = None
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)
    # The generated part checked against code indexes; None when attribution is turned off.
    attribution: Report | None = None
    # params.logprobs > 0: the generated part's tokens, whose texts join into it exactly (the best
    # candidate's when there are several).
    tokens: list[TokenInfo] | None = None
    candidates: list[Candidate] | None = None  # params.n > 1: best first
    # The parameter names a stored record had (None for a new one): a record made before a parameter
    # existed is written back without it, so every stored share reads back exactly as it was.
    stored_params: tuple[str, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def text(self) -> str:
        return self.shown.text

    @property
    def generated(self) -> str:
        return self.shown.generated

    @property
    def incomplete(self) -> bool:
        return self.finish_reason in ("cancelled", "error")

    def viewed(self, candidate: int = 0) -> tuple[Shown, list[TokenInfo] | None, Report | None]:
        """What a view shows of candidate ``candidate`` (the record itself when it has none): its text,
        its tokens (where the record kept tokens at all) and its attribution (the record's own for the
        best of a record made before candidates were checked one by one)."""
        chosen = self.candidates[candidate] if self.candidates else None
        if chosen is None:
            return self.shown, self.tokens, self.attribution
        report = chosen.attribution if candidate or chosen.attribution else self.attribution
        return chosen.shown, chosen.tokens if self.tokens is not None else None, report

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, keys in a fixed order: the columns, with the mode's own fields after ``text``."""
        with_tokens = self.tokens is not None
        typed: dict[str, Any] = {
            "params": self._params_json(), "backend": asdict(self.backend), "text": self.shown.text,
            "usage": asdict(self.usage), "timings": asdict(self.timings),
            "attribution": None if self.attribution is None else self.attribution.to_dict(),
            "tokens": None if self.tokens is None else tokens_to_json(self.tokens),
            "candidates": None if self.candidates is None else [c.to_dict(with_tokens) for c in self.candidates],
            "budget": None if self.budget is None else [part.to_dict() for part in self.budget],
        }
        data: dict[str, Any] = {}
        for name in _COLUMNS:
            if name == "budget" and self.budget is None:
                continue
            data[name] = typed[name] if name in typed else getattr(self, name)
            if name == "text":
                data.update(self.shown.fields)
        return data

    def _params_json(self) -> dict[str, Any]:
        values = self.params.to_dict()
        return values if self.stored_params is None else {k: values[k] for k in self.stored_params if k in values}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], generated_field: str | None = None) -> Generation:
        """``generated_field``: the mode's own field that holds the generated part, where it is not the
        whole text (see ``Mode.generated_field``)."""
        own = {k: v for k, v in data.items() if k not in _COLUMNS}
        plain = {f.name: data[f.name] for f in fields(cls) if f.name in data and f.name in _COLUMNS}
        candidates = data.get("candidates")
        return cls(**{
            **plain,
            "params": GenerationParams.from_dict(data["params"]),
            "stored_params": tuple(data["params"]),
            "backend": BackendSummary(**data["backend"]),
            "shown": Shown.read(data["text"], own, generated_field),
            "usage": Usage(**data["usage"]),
            "timings": Timings(**data["timings"]),
            "attribution": None if data.get("attribution") is None else Report.from_dict(data["attribution"]),
            "tokens": None if data.get("tokens") is None else tokens_from_json(data["tokens"]),
            "budget": None if data.get("budget") is None else [Spent(**part) for part in data["budget"]],
            "candidates": None if candidates is None else [Candidate.from_dict(c, generated_field)
                                                           for c in candidates],
        })
