"""pass@k against values worked out by hand, and the spread the summary reports."""

from __future__ import annotations

import math

import pytest

from playground.evaluate.passk import ks_for, mean_pass_at_k, pass_at_k, standard_error


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (5, 2, 1, 0.4),  # c / n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (20, 3, 10, 17 / 19),  # 1 - C(17,10)/C(20,10) = 1 - 19448/184756 = 1 - 2/19
        (20, 0, 10, 0.0),
        (10, 1, 10, 1.0),  # n - c < k: every draw of 10 includes the correct one
        (200, 200, 100, 1.0),
    ],
)
def test_pass_at_k_matches_hand_computed_values(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_agrees_with_the_binomial_definition_where_that_is_computable() -> None:
    for n, c, k in [(30, 7, 5), (50, 10, 10), (13, 12, 3)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), rel=1e-12)


def test_pass_at_k_stays_finite_where_the_coefficients_would_overflow_floats() -> None:
    value = pass_at_k(2000, 3, 1000)
    assert 0.0 < value < 1.0 and math.isfinite(value)


def test_invalid_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 2, 6)


def test_mean_over_problems_and_which_ks_are_reported() -> None:
    assert mean_pass_at_k([(1, 1), (1, 0), (1, 1), (1, 0)], 1) == 0.5
    assert ks_for(1) == (1,) and ks_for(9) == (1,) and ks_for(20) == (1, 10)


def test_standard_error_of_starcoders_card_figure_at_164_problems() -> None:
    # sqrt(0.336 * 0.664 / 164) = 0.03688: two standard errors are about 7.4 points.
    assert standard_error(0.336, 164) == pytest.approx(0.03688, abs=1e-5)
