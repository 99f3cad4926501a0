"""Errors of the evaluation package, under the app's one error tree.

    PlaygroundError
    └── EvaluationError            an evaluation cannot start or cannot go on
        ├── ProblemsFileError      the --problems file is missing or not in HumanEval's format
        ├── SandboxError           completions cannot be executed safely here
        └── RunFileError           a saved run cannot be read back
"""

from __future__ import annotations

from playground.errors import PlaygroundError


class EvaluationError(PlaygroundError):
    status = 500
    kind = "evaluation_error"


class ProblemsFileError(EvaluationError):
    status = 400
    kind = "problems_file"


class SandboxError(EvaluationError):
    kind = "sandbox_unavailable"


class RunFileError(EvaluationError):
    status = 404
    kind = "run_file"
