"""The result's JSON, the summary's comparison with the card, and the folder of saved runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground.evaluate import (
    Deployment,
    EvaluationConfig,
    EvaluationResult,
    ProblemResult,
    RunFileError,
    Sandbox,
    card_score,
    evaluate,
    list_runs,
    load_problems,
    load_run,
    save_run,
    summary,
)
from playground.evaluate.results import write_json
from tests.evaluate.conftest import answering


def _result(passed: int, problems: int = 164, model: str = "starcoder", **changes: object) -> EvaluationResult:
    per_problem = [ProblemResult(f"HumanEval/{i}", int(i < passed), 1, ["    pass\n"],
                                 [None if i < passed else "AssertionError"]) for i in range(problems)]
    fields: dict[str, object] = dict(
        model=model, backend="tgi", dtype="bfloat16", quantization="none", revision="main", dataset="HumanEval",
        complete_set=True, samples=1, temperature=0.0, pass_at={1: passed / problems}, card=card_score(model),
        per_problem=per_problem, timings={"wall_s": 1.0, "generation_s": 1.0, "execution_s": 1.0},
        settings={"max_new_tokens": 512},
    )
    fields.update(changes)
    return EvaluationResult(**fields)  # type: ignore[arg-type]


def test_the_json_has_every_field_and_reads_back(sandbox: Sandbox, tmp_path: Path) -> None:
    problems = load_problems(limit=2)
    result = evaluate(problems, answering({p.prompt: p.canonical_solution for p in problems}),
                      EvaluationConfig(progress=False), sandbox=sandbox,
                      deployment=Deployment("starcoder", "tgi", "bfloat16", "none", "main"), complete_set=False)
    data = json.loads(write_json(result, tmp_path / "out.json").read_text())
    for key in ("model", "backend", "dtype", "quantization", "revision", "problems", "samples", "temperature",
                "pass@1", "card", "delta", "per_problem", "timings"):
        assert key in data, key
    assert "pass@10" not in data  # only with 10 samples or more
    assert data["card"]["pass@1"] == 0.336 and "StarCoder" in data["card"]["source"]
    assert data["delta"] == pytest.approx(1.0 - 0.336)
    assert data["per_problem"][0] == {"task_id": "HumanEval/0", "passed": 1, "samples": 1,
                                      "completions": [problems[0].canonical_solution], "errors": [None]}
    assert set(data["timings"]) == {"wall_s", "generation_s", "execution_s"}
    assert load_run(tmp_path / "out.json").to_dict() == data


def test_pass_at_10_is_reported_with_20_samples() -> None:
    data = _result(50, samples=20, temperature=0.2, pass_at={1: 0.3, 10: 0.5}).to_dict()
    assert data["pass@1"] == 0.3 and data["pass@10"] == 0.5


def test_a_deployment_within_the_spread_is_called_consistent() -> None:
    text = summary(_result(53))  # 0.323 vs the card's 0.336
    assert "0.336" in text and "StarCoder paper" in text
    assert "±7.4 points" in text and "WITHIN the expected spread" in text


def test_a_deployment_outside_the_spread_is_told_what_to_check() -> None:
    text = summary(_result(35))  # 0.213: 12 points below
    assert "OUTSIDE the expected spread (below the card)" in text
    for item in ("dtype", "special tokens", "stop sequences", "prompt trimming", "quantisation"):
        assert item in text


def test_no_card_and_other_datasets_get_no_verdict() -> None:
    assert "no published HumanEval figure for nano-starcoder" in summary(_result(0, model="nano-starcoder"))
    assert "not comparable" in summary(_result(10, dataset="mine.jsonl"))
    assert "subset" in summary(_result(1, problems=3, complete_set=False))


def test_card_figures_are_found_by_registry_id_or_hub_id() -> None:
    assert card_score("starcoder") == card_score("bigcode/starcoder")
    assert card_score("starcoderbase").pass_at_1 == 0.304  # type: ignore[union-attr]
    assert card_score("santacoder").approximate  # type: ignore[union-attr]
    assert card_score("nano-starcoder") is None


def test_saved_runs_are_listed_newest_first_and_bad_files_skipped(tmp_path: Path) -> None:
    older = save_run(_result(50, created_at="2026-11-01T10:00:00+00:00"), tmp_path)
    newer = save_run(_result(55, model="bigcode/starcoder", created_at="2026-11-02T10:00:00+00:00"), tmp_path)
    same_second = save_run(_result(55, model="bigcode/starcoder", created_at="2026-11-02T10:00:00+00:00"), tmp_path)
    (tmp_path / "garbage.json").write_text("{not json")
    assert older.name == "20261101T100000Z-starcoder.json" and newer.name == "20261102T100000Z-bigcode_starcoder.json"
    assert same_second.name.endswith("-2.json")
    runs = list_runs(tmp_path)
    assert [r.path for r in runs] == [same_second, newer, older]
    assert runs[-1].pass_at_1 == pytest.approx(50 / 164) and runs[-1].card_pass_at_1 == 0.336
    assert list_runs(tmp_path / "missing") == []
    with pytest.raises(RunFileError, match="Re-run"):
        load_run(tmp_path / "garbage.json")
