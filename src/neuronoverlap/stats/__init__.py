"""Statistics shared by the library's tests: the permutation p-value rule and its result."""

from neuronoverlap.stats.permutation import (
    ALTERNATIVES,
    TIE_EPSILONS,
    PermutationTestResult,
    permutation_pvalue,
    tie_tolerance,
)

__all__ = ["ALTERNATIVES", "TIE_EPSILONS", "PermutationTestResult", "permutation_pvalue", "tie_tolerance"]
