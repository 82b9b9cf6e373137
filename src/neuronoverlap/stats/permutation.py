"""The one permutation p-value rule and result shape of the library's tests.

p = (1 + #{T_b as extreme as T}) / (1 + B) over B null draws T_b (Phipson & Smyth 2010), or
#{...} / B where the null enumerates every permutation (exact=True). "As extreme" is
T_b >= T for alternative "greater", T_b <= T for "less"; "two-sided" is
min(1, 2 min(p_less, p_greater)), as scipy.stats.permutation_test. A test whose statistic
is symmetric (a correlation's size) passes |T| and |T_b| with "greater" instead.

The tie rule, stated once: T_b ties T when |T_b - T| <= TIE_EPSILONS * eps * max(|T|, scale),
eps the machine epsilon of the statistic's dtype (0 for integers) and `scale` the size of the
terms T is made of (0 by default: purely relative, as scipy; a mean of z-scores near 0 has
rounding errors of the size of its unit-scale terms, so it passes scale=1). Ties count as
extreme, so a null draw that equals T up to rounding is not lost.

Numpy arrays and torch tensors are both taken; the answer has the input's kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.options import ALTERNATIVES

TIE_EPSILONS = 100  # the tie tolerance in machine epsilons (scipy.stats.permutation_test's)


@dataclass(frozen=True)
class PermutationTestResult:
    """A permutation test, shaped as scipy's PermutationTestResult plus the draw count.

    statistic and pvalue are floats for one test, arrays [batch] for a batch;
    null_distribution is [n_permutations] (or [batch, n_permutations]), None where the test
    had no null draws (an approximation).
    """

    statistic: float | np.ndarray
    pvalue: float | np.ndarray
    null_distribution: np.ndarray | None
    n_permutations: int | None


def tie_tolerance(statistic, scale: float = 0.0):
    """TIE_EPSILONS * eps * max(|T|, scale), elementwise, in the statistic's kind and dtype."""
    if isinstance(statistic, Tensor):
        eps = torch.finfo(statistic.dtype).eps if statistic.is_floating_point() else 0.0
        return TIE_EPSILONS * eps * statistic.abs().clamp(min=scale)
    statistic = np.asarray(statistic)
    inexact = np.issubdtype(statistic.dtype, np.inexact)
    eps = float(np.finfo(statistic.dtype).eps) if inexact else 0.0
    return TIE_EPSILONS * eps * np.maximum(np.abs(statistic), scale)


def permutation_pvalue(
    statistic: float | Float[np.ndarray, "*batch"] | Float[Tensor, "*batch"],
    null: Float[np.ndarray, "*batch permutation"] | Float[Tensor, "*batch permutation"],
    alternative: str = "greater",
    *,
    scale: float = 0.0,
    exact: bool = False,
):
    """The permutation p-value of `statistic` against `null` (module docstring).

    statistic: one value or [*batch]; null: [*batch, B] draws along the last axis. Returns a
    float for a Python or numpy scalar statistic, else an array or tensor [*batch].
    """
    if alternative not in ALTERNATIVES:
        raise InputError(f"unknown alternative {alternative!r}; use one of {', '.join(ALTERNATIVES)}")
    torch_input = isinstance(statistic, Tensor) or isinstance(null, Tensor)
    if torch_input:
        statistic = torch.as_tensor(statistic)
        null = torch.as_tensor(null, device=statistic.device)
        if null.is_floating_point() and not statistic.is_floating_point():
            statistic = statistic.to(null.dtype)
    else:
        scalar = np.ndim(statistic) == 0
        statistic, null = np.asarray(statistic), np.asarray(null)
        if not np.issubdtype(statistic.dtype, np.inexact) and np.issubdtype(null.dtype, np.inexact):
            statistic = statistic.astype(null.dtype)
    n_draws = null.shape[-1]
    if n_draws < 1:
        raise InputError("a permutation p-value needs at least one null draw")
    tolerance = tie_tolerance(statistic, scale)
    adjustment = 0 if exact else 1

    def share(extreme):
        count = extreme.sum(-1)
        count = count.to(torch.float64) if torch_input else count.astype(np.float64)
        return (count + adjustment) / (n_draws + adjustment)

    observed = statistic[..., None]
    margin = tolerance[..., None]
    if alternative == "greater":
        pvalue = share(null >= observed - margin)
    elif alternative == "less":
        pvalue = share(null <= observed + margin)
    else:
        lower, upper = share(null <= observed + margin), share(null >= observed - margin)
        pvalue = 2 * (torch.minimum(lower, upper) if torch_input else np.minimum(lower, upper))
        pvalue = pvalue.clamp(max=1.0) if torch_input else np.minimum(pvalue, 1.0)
    if torch_input:
        dtype = statistic.dtype if statistic.is_floating_point() else torch.float64
        return pvalue.to(dtype)
    return float(pvalue) if scalar else np.asarray(pvalue, dtype=np.float64)
