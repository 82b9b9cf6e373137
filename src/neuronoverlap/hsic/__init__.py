"""HSIC: kernels, estimators, independence tests, batched neuron-level HSIC, reference mode.

Pure numerical code over numpy arrays or torch tensors (CPU or GPU, float32 or float64); it
knows nothing of models or stores. Definitions, defaults and conventions: docs/hsic.md.
"""

from neuronoverlap.hsic.estimators import cka, cka_from_grams, hsic, hsic_from_grams
from neuronoverlap.hsic.independence import (
    HSICBatchTestResult,
    HSICTestResult,
    hsic_test,
    hsic_test_batch,
)
from neuronoverlap.hsic.kernels import (
    Gaussian,
    InverseMultiquadric,
    Laplacian,
    Linear,
    Polynomial,
    make_kernel,
    median_bandwidth,
)
from neuronoverlap.hsic.maxmean import MaxMeanTestResult, max_mean_test
from neuronoverlap.hsic.pairwise import (
    max_mean_score,
    pairwise_cka,
    pairwise_hsic,
    set_hsic,
    set_hsic_test,
)
from neuronoverlap.hsic.reference import (
    reference_bandwidth,
    reference_bridge_score,
    reference_pairwise_hsic,
)

__all__ = [
    "Gaussian",
    "HSICBatchTestResult",
    "HSICTestResult",
    "InverseMultiquadric",
    "Laplacian",
    "Linear",
    "MaxMeanTestResult",
    "Polynomial",
    "cka",
    "cka_from_grams",
    "hsic",
    "hsic_from_grams",
    "hsic_test",
    "hsic_test_batch",
    "make_kernel",
    "max_mean_score",
    "max_mean_test",
    "median_bandwidth",
    "pairwise_cka",
    "pairwise_hsic",
    "reference_bandwidth",
    "reference_bridge_score",
    "reference_pairwise_hsic",
    "set_hsic",
    "set_hsic_test",
]
