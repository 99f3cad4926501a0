"""The local engine's rule that a fill never comes back empty (``no_empty_fill``).

In suffix-first order nothing marks where the prefix stops and the middle starts, so a small model that
cannot tell a middle's start from its end may close the hole at once. The rule takes the end tokens out of
sampling until something visible is written; the probabilities shown stay the model's own.
"""

from __future__ import annotations

import torch

from playground.backends.local_steps import NotEmpty, blank_tokens

END, SPACE, NEWLINE, WORD = 0, 1, 2, 3
BLANK = torch.tensor([False, True, True, False])  # the end token's spelling is not blank; it is never "written"


def scores_after(rule: NotEmpty, written: list[list[int]], prompt: int = 2) -> torch.Tensor:
    ids = torch.tensor([[9] * prompt + row for row in written])
    return rule(ids, torch.zeros(len(written), 4))  # type: ignore[arg-type]


def test_the_end_is_forbidden_until_something_visible_is_written():
    rule = NotEmpty([END], BLANK, prompt_length=2)
    assert scores_after(rule, [[]])[0, END] == -float("inf")
    assert scores_after(rule, [[SPACE]])[0, END] == -float("inf")
    assert scores_after(rule, [[SPACE, NEWLINE]])[0, END] == -float("inf")
    assert scores_after(rule, [[SPACE, NEWLINE, WORD]])[0, END] == 0
    assert scores_after(rule, [[SPACE, NEWLINE, WORD, SPACE]])[0, END] == 0  # once written, ending is free


def test_each_candidate_is_judged_on_its_own_text():
    rule = NotEmpty([END], BLANK, prompt_length=2)
    scores_after(rule, [[], []])
    scores = scores_after(rule, [[WORD], [SPACE]])
    assert scores[0, END] == 0 and scores[1, END] == -float("inf")
    assert (scores[:, SPACE:] == 0).all()  # nothing else is touched


def test_blank_tokens_are_whitespace_only(nano):
    blank = blank_tokens(nano.tokenizer)
    texts = {nano.tokenizer.decode([i]): bool(blank[i]) for i in range(len(blank))}
    assert texts["\n    "] and texts["\n"] and texts[" "]
    assert not texts["<|endoftext|>"] and not texts[" return"] and not texts["("]


def fill(playground, code: str, **params):
    run = playground.start("fill", None, {"code": code}, {"temperature": 0, "max_new_tokens": 16, "logprobs": 2,
                                                          "end_at_scope": False, **params})
    list(run.pieces())
    return run.record.to_dict()


# A hole after code that reads as finished: the shipped model closes it at once.
FINISHED_AROUND = "x = 1\ny = 2\n<FILL_HERE>"


def test_without_the_rule_the_shipped_model_closes_this_hole_at_once(playground):
    record = fill(playground, FINISHED_AROUND, no_empty_fill=False)
    assert record["middle"] == "" and record["finish_reason"] == "eos"  # the case the rule is for


def test_with_the_rule_the_fill_writes_something_and_the_probabilities_stay_the_models(playground):
    record = fill(playground, FINISHED_AROUND)
    assert record["middle"].strip()
    first = record["tokens"][0]
    # The end was the model's first choice; it is still shown as such, beside the token written instead.
    assert first["top"][0]["text"] == "<|endoftext|>" and first["top"][0]["logprob"] > first["logprob"]
