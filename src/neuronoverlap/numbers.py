"""How numbers are shown to people: one rule for the report, the demo and the command line.

- **p-values** to 2 significant digits (0.0050, 0.032, 0.50, 1.0e-05); where a permutation or
  calibration test cannot go lower (its floor, `permutation_floor(B)` = 1 / (B + 1) for
  p = (1 + #) / (1 + B)), a p-value at the floor is shown as a bound: "< 0.005" (1 / 201), or
  "≤ 0.001" when the bound is the floor itself (1 / 1000).
- **an estimate and its interval** to the same decimals, enough to give the interval's width 2
  significant digits (`decimals`): "0.9 (0.3 to 1.4)", not "0.8741 (0.3235 to 1.39)".
- **probabilities** (selection probabilities, shares of resamples) to two decimals: "0.44".
- anything else to 4 significant digits (`number`).

Only the display is rounded: the JSON files and CSV tables keep full precision.

    >>> pvalue(1 / 201, floor=permutation_floor(200)), pvalue(0.0321), probability(0.4351)
    ('< 0.005', '0.032', '0.44')
    >>> p_is(1 / 201, floor=permutation_floor(200)), p_is(0.0321)
    ('p < 0.005', 'p = 0.032')
    >>> d = decimals((0.3235, 1.39)); fixed(0.8741, d), span(0.3235, 1.39, d)
    ('0.9', '0.3 to 1.4')
"""

from __future__ import annotations

import math
from collections.abc import Iterable

#: Decimals when no interval says how many (intervals of width 0, or none).
FALLBACK_DECIMALS = 3

#: At most this many decimals, however narrow an interval.
MAX_DECIMALS = 6


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _exponent(value: float) -> int:
    """The decimal exponent of `value` rounded to 2 significant digits (0.00999 -> -2)."""
    return int(f"{abs(value):.1e}".split("e")[1])


def permutation_floor(n_permutations: int) -> float:
    """The smallest p-value (1 + #) / (1 + B) can take with B permutations or random draws."""
    return 1.0 / (int(n_permutations) + 1)


def _bound(floor: float) -> tuple[str, str]:
    """The floor rounded up to 1 significant digit, and '<' or '≤' (when that is the floor)."""
    exponent = math.floor(math.log10(floor))
    step = 10.0**exponent
    digit = math.ceil(floor / step * (1 - 1e-12))
    if digit == 10:
        digit, exponent, step = 1, exponent + 1, step * 10
    bound = digit * step
    text = f"{bound:.{max(0, -exponent)}f}" if exponent >= -4 else f"{bound:.0e}"
    return ("≤" if math.isclose(bound, floor, rel_tol=1e-9) else "<"), text


def pvalue(p: float | None, *, floor: float | None = None) -> str:
    """A p-value to 2 significant digits; at or below `floor` (what the test can resolve), the
    bound "< 0.005". None or NaN: 'n/a'."""
    if _missing(p):
        return "n/a"
    p = float(p)
    if floor is not None and floor > 0 and p <= floor * (1 + 1e-9):
        sign, text = _bound(floor)
        return f"{sign} {text}"
    if p == 0:
        return "0"
    if p < 1e-4:
        return f"{p:.1e}"
    return f"{p:.{max(0, 1 - _exponent(p))}f}"


def p_is(p: float | None, *, floor: float | None = None) -> str:
    """'p = 0.032', or 'p < 0.005' at the floor: a p-value in a sentence."""
    text = pvalue(p, floor=floor)
    return f"p {text}" if text[0] in "<≤" else f"p = {text}"


def probability(x: float | None) -> str:
    """A probability or share to two decimals ('0.44'), rounded as its percentage is (f"{x:.0%}":
    0.435 is '0.44' and '44%' alike); None or NaN: 'n/a'."""
    return "n/a" if _missing(x) else f"{round(float(x) * 100) / 100:.2f}"


def decimals(*intervals: Iterable[float | None] | None) -> int | None:
    """Decimals that give the narrowest interval's width 2 significant digits (at most
    `MAX_DECIMALS`); `FALLBACK_DECIMALS` when every interval has width 0; None when none is known."""
    widths, known = [], False
    for interval in intervals:
        if interval is None:
            continue
        low, high = list(interval)
        if _missing(low) or _missing(high):
            continue
        known = True
        width = abs(float(high) - float(low))
        if width > 0 and math.isfinite(width):
            widths.append(width)
    if not known:
        return None
    if not widths:
        return FALLBACK_DECIMALS
    return min(MAX_DECIMALS, max(0, 1 - _exponent(min(widths))))


def number(value: float | None) -> str:
    """Any other number: 4 significant digits; None or NaN: 'n/a'."""
    if _missing(value):
        return "n/a"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{float(value):.4g}"


def fixed(value: float | None, places: int | None, *, signed: bool = False) -> str:
    """`value` to `places` decimals (from `decimals`); None places: `number(value)`."""
    if _missing(value):
        return "n/a"
    if places is None:
        text = number(value)
        return f"+{text}" if signed and float(value) >= 0 else text
    text = f"{float(value):{'+' if signed else ''}.{places}f}"
    if text.startswith("-") and float(text) == 0:  # -0.001 at 2 decimals is 0.00, not -0.00
        text = ("+" if signed else "") + text[1:]
    return text


def span(low: float | None, high: float | None, places: int | None = None, *, signed: bool = False) -> str:
    """'low to high', both ends to the same decimals (`decimals((low, high))` when not given)."""
    if _missing(low) or _missing(high):
        return "no interval"
    places = decimals((low, high)) if places is None else places
    return f"{fixed(low, places, signed=signed)} to {fixed(high, places, signed=signed)}"


__all__ = [
    "FALLBACK_DECIMALS",
    "decimals",
    "fixed",
    "number",
    "p_is",
    "permutation_floor",
    "probability",
    "pvalue",
    "span",
]
