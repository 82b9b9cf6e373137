"""HSIC independence tests: permutation (vectorised, seeded) and gamma approximation.

Permutation test: T = <centred K, centred L>; the null statistic of a permutation P is
<centred K, P (centred L) P^T> (centring commutes with permuting samples), computed for chunks
of permutations at once, with no Python loop over permutations: by gathering rows and columns
of the centred L (exact), or, where the Gram matrices are numerically of low rank and enough
permutations are asked for, through their truncated eigendecompositions (lowrank.py, exact to
about 1e-12 relative). p = (1 + #{T_b >= T}) / (1 + B) with the library's one tie rule
(neuronoverlap.stats.permutation: 100 machine epsilons relative, as scipy.stats.permutation_test).
Permutations are drawn on the CPU from numpy's PCG64 seeded by SeedSequence(seed) (one child
sequence per batch element), so a seed gives the same p-values on any device and chunking.

Gamma test (Gretton et al. 2008): n * HSIC_b (1/n^2 normalisation) is matched under H0 to a
gamma law with the estimated mean (1/n)(mean k(x,x) - mean k(x,x'))(same for y) and variance
2 (n-4)(n-5) / (n (n-1) (n-2) (n-3)) * mean_{i != j} (Kc_ij Lc_ij)^2. Needs n >= 6 and a biased
estimator; where the estimated mean or variance is 0 (a constant input) the p-value is 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.hsic.estimators import centre_gram, normaliser, samples_pair
from neuronoverlap.hsic.inputs import as_sample_batch, check_estimator, check_seed, common_dtype
from neuronoverlap.hsic.kernels import Bandwidth, describe, make_kernel
from neuronoverlap.hsic.lowrank import low_rank_null
from neuronoverlap.stats.permutation import PermutationTestResult, permutation_pvalue

METHODS = ("permutation", "gamma")
CHUNK_BYTES = 1 << 20  # permuted Gram matrices gathered per step: small enough to stay in cache
BATCH_STEP_BYTES = 16 << 20  # Gram matrices of a batch built per step


@dataclass(frozen=True)
class HSICTestResult(PermutationTestResult):
    """One HSIC test: statistic in the estimator's units, p-value, and the settings used.

    null_distribution: [n_permutations] for the permutation test, None for the gamma test.
    """

    method: str
    n: int
    estimator: str
    kernel_x: str
    kernel_y: str
    bandwidth_x: float | None
    bandwidth_y: float | None
    seed: int | None
    gamma_shape: float | None = None
    gamma_scale: float | None = None


@dataclass(frozen=True)
class HSICBatchTestResult(PermutationTestResult):
    """Many independent HSIC tests run together; arrays have the batch as first axis.

    statistic, pvalue: [batch]; null_distribution: [batch, n_permutations] or None (gamma).
    """

    method: str
    n: int
    estimator: str
    kernel_x: str
    kernel_y: str
    bandwidth_x: np.ndarray | None
    bandwidth_y: np.ndarray | None
    seed: int | None
    gamma_shape: np.ndarray | None = None
    gamma_scale: np.ndarray | None = None


def draw_permutations(
    n: int, n_permutations: int, seed: int | None | np.random.SeedSequence, elements=range(1)
) -> Int[Tensor, "batch permutation sample"]:
    """Seeded random permutations of range(n): an independent set for each batch element.

    Element e draws from the child sequence (seed, spawn_key=(e,)), so its permutations do
    not depend on how the batch is split into chunks.
    """
    check_seed(seed)
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    identity = np.tile(np.arange(n, dtype=np.int64), (n_permutations, 1))
    orders = np.empty((len(elements), n_permutations, n), dtype=np.int64)
    for row, element in enumerate(elements):
        child = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, element))
        orders[row] = np.random.default_rng(child).permuted(identity, axis=1)
    return torch.from_numpy(orders)


def stratified_permutations(
    strata: Int[np.ndarray, " sample"], n_permutations: int, seed: int | None | np.random.SeedSequence
) -> Int[Tensor, "permutation sample"]:
    """Seeded random permutations of range(n) that move each sample only within its stratum."""
    strata = np.asarray(strata)
    rng = np.random.default_rng(seed)
    orders = np.tile(np.arange(len(strata), dtype=np.int64), (n_permutations, 1))
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        orders[:, members] = rng.permuted(np.tile(members, (n_permutations, 1)), axis=1)
    return torch.from_numpy(orders)


def permuted_inner_products(
    left: Float[Tensor, "batch sample sample"],
    right: Float[Tensor, "batch sample sample"],
    permutations: Int[Tensor, "batch permutation sample"],
    chunk_bytes: int = CHUNK_BYTES,
) -> Float[Tensor, "batch permutation"]:
    """<left_e, P right_e P^T> for every batch element e and each of its permutations P."""
    batch, n, _ = left.shape
    n_permutations = permutations.shape[1]
    permutations = permutations.to(left.device)
    matrix_bytes = n * n * left.element_size()
    per_chunk = int(min(n_permutations, max(1, chunk_bytes // matrix_bytes)))
    elements_per_chunk = 1
    if per_chunk == n_permutations:
        elements_per_chunk = int(max(1, chunk_bytes // (matrix_bytes * n_permutations)))
    out = torch.empty(batch, n_permutations, dtype=left.dtype, device=left.device)
    for first in range(0, batch, elements_per_chunk):
        last = min(batch, first + elements_per_chunk)
        size = last - first
        right_rows = right[first:last].reshape(size * n, n)
        left_flat = left[first:last].reshape(size, n * n, 1)
        row_offsets = (torch.arange(size, device=left.device) * n)[:, None, None]
        for start in range(0, n_permutations, per_chunk):
            stop = min(n_permutations, start + per_chunk)
            order = permutations[first:last, start:stop]
            count = stop - start
            rows = right_rows.index_select(0, (order + row_offsets).reshape(-1))
            rows = rows.reshape(size, count, n, n)
            permuted = rows.gather(3, order[:, :, None, :].expand(size, count, n, n))
            out[first:last, start:stop] = torch.bmm(permuted.reshape(size, count, n * n), left_flat)[..., 0]
    return out


def observed_inner_products(
    left: Float[Tensor, "batch sample sample"], right: Float[Tensor, "batch sample sample"]
) -> Float[Tensor, " batch"]:
    """<left_e, right_e>, summed the same way as the permuted ones."""
    batch, n, _ = left.shape
    return torch.bmm(right.reshape(batch, 1, n * n), left.reshape(batch, n * n, 1))[:, 0, 0]


def gamma_pvalues(
    gram_x: Float[Tensor, "batch sample sample"], gram_y: Float[Tensor, "batch sample sample"]
) -> tuple[Tensor, Tensor, Tensor]:
    """Gretton et al. 2008 gamma approximation: (pvalue, shape, scale) per batch element."""
    n = gram_x.shape[-1]
    centred_x, centred_y = centre_gram(gram_x, "biased"), centre_gram(gram_y, "biased")
    product = centred_x * centred_y
    test_statistic = product.sum(dim=(-1, -2)) / n  # n * HSIC_b with the 1/n^2 normalisation
    eye = torch.eye(n, dtype=torch.bool, device=gram_x.device)
    off_diagonal_square = (product / 6).square().masked_fill(eye, 0).sum(dim=(-1, -2))
    variance = (
        72 * (n - 4) * (n - 5) / (n * (n - 1) * (n - 2) * (n - 3)) * off_diagonal_square / (n * (n - 1))
    )

    def trace_of_covariance(gram: Tensor) -> Tensor:
        diagonal_sum = gram.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
        off_mean = (gram.sum(dim=(-1, -2)) - diagonal_sum) / (n * (n - 1))
        return diagonal_sum / n - off_mean

    mean = trace_of_covariance(gram_x) * trace_of_covariance(gram_y) / n
    valid = (mean > 0) & (variance > 0)
    safe_mean = torch.where(valid, mean, torch.ones_like(mean))
    safe_variance = torch.where(valid, variance, torch.ones_like(variance))
    shape = safe_mean.square() / safe_variance
    scale = n * safe_variance / safe_mean
    pvalue = torch.special.gammaincc(shape, (test_statistic / scale).clamp(min=0))
    pvalue = torch.where(valid, pvalue, torch.ones_like(pvalue))
    nan = torch.full_like(shape, float("nan"))
    return pvalue, torch.where(valid, shape, nan), torch.where(valid, scale, nan)


def _check_test_arguments(method: str, estimator: str, n: int, n_permutations: int) -> None:
    if method not in METHODS:
        raise InputError(f"unknown test method {method!r}; choose one of {', '.join(METHODS)}")
    check_estimator(estimator, n)
    if method == "gamma":
        if estimator == "unbiased":
            raise InputError(
                "the gamma approximation is for the biased HSIC estimator; "
                "use method='permutation' with estimator='unbiased'"
            )
        if n < 6:
            raise InputError(f"the gamma approximation needs at least 6 samples, got {n}")
    elif int(n_permutations) != n_permutations or n_permutations < 1:
        raise InputError(f"n_permutations must be a positive integer, got {n_permutations!r}")


def independence_test_grams(
    gram_x: Float[Tensor, "batch sample sample"],
    gram_y: Float[Tensor, "batch sample sample"],
    method: str,
    estimator: str,
    n_permutations: int,
    seed: int | None | np.random.SeedSequence,
    elements=None,
    chunk_bytes: int = CHUNK_BYTES,
    fast_path: bool = True,
) -> dict[str, Tensor | None]:
    """The test on stacks of Gram matrices: statistic, pvalue, null, gamma shape and scale.

    The null comes from the eigendecomposition path (lowrank.py) where it pays off and
    fast_path is true, else from gathering permuted Gram matrices (exact).
    """
    n = gram_x.shape[-1]
    centred_x = centre_gram(gram_x, estimator)
    centred_y = centre_gram(gram_y, estimator)
    observed = observed_inner_products(centred_x, centred_y)
    divisor = normaliser(n, estimator)
    result: dict[str, Tensor | None] = {
        "statistic": observed / divisor,
        "null": None,
        "shape": None,
        "scale": None,
    }
    if method == "permutation":
        elements = range(gram_x.shape[0]) if elements is None else elements
        orders = draw_permutations(n, int(n_permutations), seed, elements)
        fast = None
        if fast_path:
            fast = low_rank_null(gram_x, gram_y, centred_x, centred_y, estimator, orders)
        if fast is None:
            compared = observed
            null = permuted_inner_products(centred_x, centred_y, orders, chunk_bytes)
        else:
            compared, null = fast
        result["pvalue"] = permutation_pvalue(compared, null)
        result["null"] = null / divisor
    else:
        result["pvalue"], result["shape"], result["scale"] = gamma_pvalues(gram_x, gram_y)
    return result


def _numpy(tensor: Tensor | None) -> np.ndarray | None:
    return None if tensor is None else tensor.detach().cpu().numpy()


def hsic_test(
    x,
    y,
    kernel="gaussian",
    method: str = "permutation",
    n_permutations: int = 1000,
    seed: int | None = 0,
    *,
    bandwidth: Bandwidth = "median",
    estimator: str = "biased",
    kernel_y=None,
    device: str | torch.device | None = None,
) -> HSICTestResult:
    """Test independence of x [n, d_x] and y [n, d_y] with HSIC.

    method: "permutation" (p = (1 + #{T_b >= T}) / (1 + B), seeded) or "gamma" (Gretton et
    al. 2008). The statistic is HSIC under `estimator` ("biased", "biased_n2", "unbiased").
    """
    x_tensor, y_tensor = samples_pair(x, y, device)
    batch = _run_batch(
        x_tensor[None], y_tensor[None], kernel, method, n_permutations, seed, bandwidth, estimator, kernel_y
    )

    def first(values):
        return None if values is None else float(values[0])

    return HSICTestResult(
        statistic=first(batch.statistic),
        pvalue=first(batch.pvalue),
        null_distribution=None if batch.null_distribution is None else batch.null_distribution[0],
        method=batch.method,
        n=batch.n,
        estimator=batch.estimator,
        kernel_x=batch.kernel_x,
        kernel_y=batch.kernel_y,
        bandwidth_x=first(batch.bandwidth_x),
        bandwidth_y=first(batch.bandwidth_y),
        n_permutations=batch.n_permutations,
        seed=batch.seed,
        gamma_shape=first(batch.gamma_shape),
        gamma_scale=first(batch.gamma_scale),
    )


def hsic_test_batch(
    xs,
    ys,
    kernel="gaussian",
    method: str = "permutation",
    n_permutations: int = 1000,
    seed: int | None = 0,
    *,
    bandwidth: Bandwidth = "median",
    estimator: str = "biased",
    kernel_y=None,
    device: str | torch.device | None = None,
) -> HSICBatchTestResult:
    """Independent HSIC tests of xs[e] against ys[e] for every e, computed together.

    xs: [batch, n, d_x] (or [batch, n]); ys: [batch, n, d_y]. Element 0 with `seed` gives
    the same result as hsic_test on it; the other elements get their own permutations.
    Memory: two [batch, n, n] Gram stacks.
    """
    x_tensor = as_sample_batch(xs, "xs", device)
    y_tensor = as_sample_batch(ys, "ys", device=x_tensor.device)
    x_tensor, y_tensor = common_dtype(x_tensor, y_tensor)
    if x_tensor.shape[0] != y_tensor.shape[0]:
        raise InputError(
            f"xs and ys must have the same batch size, got {x_tensor.shape[0]} and {y_tensor.shape[0]}"
        )
    if x_tensor.shape[1] != y_tensor.shape[1]:
        raise InputError(
            f"xs and ys must have the same number of samples, got {x_tensor.shape[1]} and {y_tensor.shape[1]}"
        )
    return _run_batch(
        x_tensor, y_tensor, kernel, method, n_permutations, seed, bandwidth, estimator, kernel_y
    )


def _run_batch(
    x: Float[Tensor, "batch sample feature_x"],
    y: Float[Tensor, "batch sample feature_y"],
    kernel,
    method: str,
    n_permutations: int,
    seed: int | None,
    bandwidth: Bandwidth,
    estimator: str,
    kernel_y,
) -> HSICBatchTestResult:
    batch, n = x.shape[0], x.shape[1]
    _check_test_arguments(method, estimator, n, n_permutations)
    kernel_x = make_kernel(kernel, bandwidth)
    kernel_other = kernel_x if kernel_y is None else make_kernel(kernel_y, bandwidth)
    check_seed(seed)
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    step = max(1, BATCH_STEP_BYTES // (4 * n * n * x.element_size()))
    parts: dict[str, list] = {
        key: [] for key in ("statistic", "pvalue", "null", "shape", "scale", "sigma_x", "sigma_y")
    }
    for first in range(0, batch, step):
        elements = range(first, min(batch, first + step))
        gram_x, sigma_x = kernel_x.gram(x[elements.start : elements.stop])
        gram_y, sigma_y = kernel_other.gram(y[elements.start : elements.stop])
        step_out = independence_test_grams(gram_x, gram_y, method, estimator, n_permutations, root, elements)
        step_out.update(sigma_x=sigma_x, sigma_y=sigma_y)
        for key, values in parts.items():
            values.append(step_out[key])
    out = {key: None if values[0] is None else torch.cat(values) for key, values in parts.items()}
    sigma_x, sigma_y = out["sigma_x"], out["sigma_y"]
    permutation = method == "permutation"
    return HSICBatchTestResult(
        statistic=_numpy(out["statistic"]),
        pvalue=_numpy(out["pvalue"]),
        null_distribution=_numpy(out["null"]),
        method=method,
        n=n,
        estimator=estimator,
        kernel_x=describe(kernel_x),
        kernel_y=describe(kernel_other),
        bandwidth_x=_numpy(sigma_x),
        bandwidth_y=_numpy(sigma_y),
        n_permutations=int(n_permutations) if permutation else None,
        seed=seed if permutation else None,
        gamma_shape=_numpy(out["shape"]),
        gamma_scale=_numpy(out["scale"]),
    )
