"""The number-formatting rule (neuronoverlap.numbers), tested as properties."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from neuronoverlap.numbers import (
    FALLBACK_DECIMALS,
    MAX_DECIMALS,
    decimals,
    fixed,
    permutation_floor,
    probability,
    pvalue,
    span,
)

P = st.floats(min_value=1e-4, max_value=1.0, allow_nan=False)


def significant_digits(text: str) -> str:
    mantissa = text.split("e")[0]
    return mantissa.replace("-", "").replace(".", "").lstrip("0")


@given(P)
def test_a_pvalue_has_two_significant_digits_and_rounds_correctly(p):
    text = pvalue(p)
    shown = float(text)
    assert len(significant_digits(text)) == 2, text
    unit = 10 ** (math.floor(math.log10(shown)) - 1)
    assert abs(shown - p) <= unit / 2 * (1 + 1e-9), (p, text)


@given(st.floats(min_value=1e-300, max_value=1e-4, exclude_max=True))
def test_a_tiny_pvalue_is_scientific_with_two_significant_digits(p):
    text = pvalue(p)
    assert re.fullmatch(r"\d\.\de-\d\d\d?", text) and math.isclose(float(text), p, rel_tol=0.051), text


@given(P, P)
def test_pvalues_keep_their_order(a, b):
    a, b = min(a, b), max(a, b)
    assert float(pvalue(a)) <= float(pvalue(b))


@given(st.integers(1, 100_000), st.data())
def test_a_pvalue_at_the_permutation_floor_is_a_bound_and_above_it_a_number(n, data):
    floor = permutation_floor(n)
    k = data.draw(st.integers(0, n))
    p = (1 + k) / (1 + n)
    text = pvalue(p, floor=floor)
    if k == 0:
        sign, bound = text.split(" ")
        assert sign in ("<", "≤") and floor <= float(bound) < 2 * floor * (1 + 1e-9), text
        assert (sign == "≤") == math.isclose(float(bound), floor), text
    else:
        assert text == pvalue(p) and not text.startswith(("<", "≤"))


def test_the_issues_examples():
    assert pvalue(0.004975, floor=permutation_floor(200)) == "< 0.005"
    assert pvalue(0.00498) == "0.0050" and pvalue(0.00999) == "0.010" and pvalue(1.0) == "1.0"
    assert pvalue(1 / 1000, floor=permutation_floor(999)) == "≤ 0.001"
    assert pvalue(None) == "n/a" and pvalue(float("nan")) == "n/a"
    assert span(0.3235, 1.39) == "0.3 to 1.4" and probability(0.435) == "0.44" and f"{0.435:.0%}" == "44%"


ENDS = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


@given(ENDS, ENDS)
@example(0.0, 0.995)  # 0.995 is 0.99499... in binary: 2 digits at 2 decimals, 99.5 once scaled
def test_an_interval_shows_both_ends_to_the_same_decimals_with_a_two_digit_width(a, b):
    low, high = min(a, b), max(a, b)
    places = decimals((low, high))
    ends = span(low, high).split(" to ")
    assert [len(e.split(".")[1]) if "." in e else 0 for e in ends] == [places, places]
    for shown, raw in zip(ends, (low, high), strict=True):
        assert abs(float(shown) - raw) <= 0.5 * 10**-places * (1 + 1e-9) + 1e-12 * abs(raw)
    width = high - low
    if width == 0:
        assert places == FALLBACK_DECIMALS
    elif places < MAX_DECIMALS:
        scaled = width * 10**places  # within a float's rounding of the 9.5 and 99.5 boundaries
        assert scaled >= 9.5 * (1 - 1e-12), (low, high, places)  # at least 2 significant digits
        assert places == 0 or scaled <= 99.5 * (1 + 1e-12), (low, high, places)  # and not 3


@given(st.lists(st.tuples(ENDS, ENDS), min_size=1, max_size=5))
def test_the_narrowest_interval_decides_the_decimals_of_a_group(pairs):
    intervals = [(min(a, b), max(a, b)) for a, b in pairs]
    positive = [i for i in intervals if i[1] > i[0]]  # a zero-width interval says nothing of digits
    expected = max(decimals(i) for i in positive) if positive else FALLBACK_DECIMALS
    assert decimals(*intervals) == expected


def test_no_interval_means_four_significant_digits():
    assert decimals(None, (None, 1.0)) is None
    assert fixed(0.87412345, None) == "0.8741" and span(None, 1.0) == "no interval"


@given(st.floats(min_value=-1, max_value=1, allow_nan=False), st.integers(0, 6), st.booleans())
def test_fixed_never_shows_minus_zero(value, places, signed):
    text = fixed(value, places, signed=signed)
    assert not re.fullmatch(r"-0\.?0*", text)
    assert abs(float(text) - value) <= 0.5 * 10**-places + 1e-12
    assert text.startswith(("+", "-")) if signed else not text.startswith("+")


@given(st.floats(min_value=0, max_value=1, allow_nan=False))
def test_a_probability_has_two_decimals(x):
    text = probability(x)
    assert re.fullmatch(r"[01]\.\d\d", text) and abs(float(text) - x) <= 0.005 + 1e-12
    assert text == f"{int(f'{x:.0%}'[:-1]) / 100:.2f}"  # the same rounding as the verdict's "44%"


@pytest.mark.parametrize(
    "n, expected", [(200, "< 0.005"), (999, "≤ 0.001"), (9999, "≤ 0.0001"), (30, "< 0.04")]
)
def test_floors_of_the_toolkits_tests(n, expected):
    assert pvalue(permutation_floor(n), floor=permutation_floor(n)) == expected


def test_the_module_examples_run():
    import doctest

    import neuronoverlap.numbers as numbers

    assert doctest.testmod(numbers).failed == 0
