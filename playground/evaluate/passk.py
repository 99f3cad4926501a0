"""pass@k and how much a pass rate may wander by chance.

pass@k is the chance that at least one of k samples drawn from n (of which c
passed) is correct: 1 - C(n-c, k) / C(n, k). The product form below avoids
the huge binomial coefficients (Chen et al. 2021, "Evaluating Large Language
Models Trained on Code", the Codex paper).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``n`` samples, ``c`` of them correct."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0  # every draw of k samples contains a correct one
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i)
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """The benchmark's pass@k: the mean over problems of (n, c)."""
    if not counts:
        raise ValueError("no problems to average over")
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def ks_for(samples: int) -> tuple[int, ...]:
    """pass@1 always; pass@10 once there are enough samples for it to mean something."""
    return (1, 10) if samples >= 10 else (1,)


def standard_error(p: float, problems: int) -> float:
    """Binomial standard error of a pass rate ``p`` measured on ``problems`` problems."""
    if problems <= 0:
        raise ValueError("problems must be positive")
    return math.sqrt(p * (1.0 - p) / problems)
