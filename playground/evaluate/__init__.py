"""Check a deployment against its model card: HumanEval through the serving path, in a sandbox.

The public surface for the app (its future "Evaluate" view) and for scripts:

    from playground.evaluate import evaluate, load_problems, list_runs, load_run, summary

Importing this package loads no model and starts nothing; ``service_adapter``
(the only module that touches the app's service) is imported by the CLI alone.
"""

from playground.evaluate.card import CardScore, card_score
from playground.evaluate.errors import EvaluationError, ProblemsFileError, RunFileError, SandboxError
from playground.evaluate.passk import mean_pass_at_k, pass_at_k, standard_error
from playground.evaluate.problems import Problem, humaneval_path, load_problems
from playground.evaluate.report import summary, verdict
from playground.evaluate.results import EvaluationResult, ProblemResult, RunEntry, list_runs, load_run, save_run
from playground.evaluate.runner import STOP_SEQUENCES, Deployment, EvaluationConfig, Generate, evaluate
from playground.evaluate.sandbox import Sandbox, SandboxLimits, SandboxReport

__all__ = [
    "STOP_SEQUENCES", "CardScore", "Deployment", "EvaluationConfig", "EvaluationError", "EvaluationResult",
    "Generate", "Problem", "ProblemResult", "ProblemsFileError", "RunEntry", "RunFileError", "Sandbox",
    "SandboxError", "SandboxLimits", "SandboxReport", "card_score", "evaluate", "humaneval_path", "list_runs",
    "load_problems", "load_run", "mean_pass_at_k", "pass_at_k", "save_run", "standard_error", "summary", "verdict",
]
