"""Kernels and their Gram matrices, batched over leading axes.

A kernel argument is a name ("gaussian"/"rbf", "laplacian", "linear", "polynomial"/"poly",
"inverse_multiquadric"/"imq"), a kernel object from this module, or any callable that maps a
[n_samples, n_features] tensor to its [n_samples, n_samples] Gram matrix (tensor or array).

Bandwidth-based kernels (Gaussian, Laplacian, inverse multiquadric) take a positive number or
a median heuristic, computed per Gram matrix (per batch element, per neuron):
- "median" (default): sigma = median of the distances ||x_a - x_b|| over the distinct pairs
  a < b (numpy's median: the mean of the two middle values). Same as hyppo's Gaussian kernel.
- "gretton": sigma = sqrt(0.5 * median of the positive squared distances), as in Gretton's
  reference code for the HSIC gamma test; exp(-d^2 / (2 sigma^2)) is then exp(-d^2 / median d^2).
Ties and constants: when the median distance is 0 (more than half the pairs tied), "median"
falls back to the median of the positive distances; when every distance is 0 (a constant
input) sigma is 1. The Gram matrix of a constant input is then all ones, its centred Gram is 0,
and HSIC is exactly 0, never NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from neuronoverlap.errors import InputError
from neuronoverlap.hsic.inputs import as_squared_distances

BANDWIDTH_RULES = ("median", "gretton")
Bandwidth = float | str


def squared_distances(
    x: Float[Tensor, "*batch sample feature"],
) -> Float[Tensor, "*batch sample sample"]:
    """Squared Euclidean distances between samples, exact zeros on the diagonal."""
    if x.shape[-1] == 1:
        column = x[..., 0]
        return (column[..., :, None] - column[..., None, :]).square()
    batch_shape, n, d = x.shape[:-2], x.shape[-2], x.shape[-1]
    flat = x.reshape(-1, n, d)
    distances = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")
    return distances.square().reshape(*batch_shape, n, n)


def _middle_values(
    values: Float[Tensor, "row pair"], skip: Tensor | None = None, overwrite: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """The two middle order statistics of each row's values after its `skip` smallest (none by
    default; equal for an odd count), and each row's maximum. overwrite: rows may be reordered."""
    if skip is None:
        skip = torch.zeros(values.shape[0], dtype=torch.int64, device=values.device)
    if values.device.type == "cpu":
        return _middle_values_numpy(values, skip, overwrite)
    return _middle_values_torch(values, skip)


def _middle_values_numpy(
    values: Float[Tensor, "row pair"], skip: Int[Tensor, " row"], overwrite: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """_middle_values by numpy's in-place introselect, several times faster on a CPU than
    torch's topk; on a copy unless overwrite."""
    work = values.numpy() if overwrite else values.numpy().copy()
    count, skip = work.shape[-1], skip.numpy()
    lower = skip + (count - skip - 1) // 2
    low = np.empty(work.shape[0], dtype=work.dtype)
    high, largest = np.empty_like(low), np.empty_like(low)
    for rank in np.unique(lower):
        rows = np.flatnonzero(lower == rank)
        block = work if len(rows) == len(work) else work[rows]
        block.partition(rank, axis=-1)
        low[rows] = block[:, rank]
        odd = (count - skip[rows]) % 2 == 1
        following = block[:, rank + 1 :].min(axis=-1) if rank + 1 < count else block[:, rank]
        high[rows] = np.where(odd, low[rows], following)
        largest[rows] = block[:, rank:].max(axis=-1)
    return torch.from_numpy(low), torch.from_numpy(high), torch.from_numpy(largest)


def _middle_values_torch(
    values: Float[Tensor, "row pair"], skip: Int[Tensor, " row"]
) -> tuple[Tensor, Tensor, Tensor]:
    """_middle_values with torch (any device): topk when nothing is skipped, else a sort."""
    count = values.shape[-1]
    largest = values.amax(dim=-1)
    if not bool(skip.any()):
        smallest = values.topk(count // 2 + 1, dim=-1, largest=False, sorted=False).values
        if count % 2:
            high = smallest.amax(dim=-1)
            return high, high, largest
        two = smallest.topk(2, dim=-1).values
        return two[..., 1], two[..., 0], largest
    ordered = values.sort(dim=-1).values
    kept = count - skip
    lower = (skip + (kept - 1).clamp(min=0) // 2).clamp(max=count - 1)
    upper = (skip + kept // 2).clamp(max=count - 1)
    return (
        ordered.gather(-1, lower[..., None])[..., 0],
        ordered.gather(-1, upper[..., None])[..., 0],
        largest,
    )


def pair_median_bandwidth(
    pair_squared: Float[Tensor, "row pair"], rule: str = "median", overwrite: bool = False
) -> Float[Tensor, " row"]:
    """Median-heuristic bandwidth from the squared distances of the distinct pairs of each row
    (see the module docstring for the rules, ties and constants). overwrite: each row's
    values may be reordered (on a CPU they are then selected in place, without a copy)."""
    if rule not in BANDWIDTH_RULES:
        raise InputError(
            f"unknown bandwidth rule {rule!r}; choose a positive number or "
            f"one of {', '.join(BANDWIDTH_RULES)}"
        )
    if pair_squared.shape[-1] == 0:
        return pair_squared.new_ones(pair_squared.shape[:-1])
    low, high, largest = _middle_values(pair_squared, overwrite=overwrite)
    all_tied = largest <= 0
    if rule == "median":  # numpy median of the distances: average the roots of the middles
        redo = (high <= 0) & ~all_tied
    else:  # Gretton: sqrt(0.5 * median of the positive squared distances)
        redo = (pair_squared.amin(dim=-1) <= 0) & ~all_tied
    if bool(redo.any()):
        positive = pair_squared[redo]
        positive_low, positive_high, _ = _middle_values(positive, (positive <= 0).sum(dim=-1))
        low, high = low.clone(), high.clone()
        low[redo], high[redo] = positive_low, positive_high
    if rule == "median":
        sigma = 0.5 * (low.sqrt() + high.sqrt())
    else:
        sigma = (0.25 * (low + high)).sqrt()
    return torch.where(all_tied, torch.ones_like(sigma), sigma)


def distinct_pairs(squared: Float[Tensor, "*batch sample sample"]) -> Float[Tensor, "row pair"]:
    """The strict upper triangle of each matrix, one row per matrix."""
    n = squared.shape[-1]
    rows, cols = torch.triu_indices(n, n, 1, device=squared.device)
    return squared[..., rows, cols].reshape(-1, rows.shape[0])


def median_bandwidth(
    squared: Float[Tensor, "*batch sample sample"], rule: str = "median"
) -> Float[Tensor, "*batch"]:
    """Median-heuristic bandwidth of each matrix of squared distances (checked: finite, >= 0)."""
    squared = as_squared_distances(squared)
    return pair_median_bandwidth(distinct_pairs(squared), rule).reshape(squared.shape[:-2])


def pair_bandwidth(
    bandwidth: Bandwidth,
    pair_squared: Float[Tensor, "row pair"],
    scale: Tensor | None = None,
    overwrite: bool = False,
) -> Tensor:
    """The bandwidth of each row: a rule applied to its pairs, or the fixed value (divided by
    the row's scale when its data were divided by it). overwrite: as pair_median_bandwidth."""
    if isinstance(bandwidth, str):
        return pair_median_bandwidth(pair_squared, bandwidth, overwrite)
    fixed = pair_squared.new_full(pair_squared.shape[:-1], float(bandwidth))
    return fixed if scale is None else fixed / scale


def power_of_two_scale(values: Float[Tensor, "*batch sample feature"]) -> Float[Tensor, "*batch"]:
    """2^e with max|values| in [2^(e-1), 2^e): dividing by it is exact and brings the values
    into [-1, 1], so that squared distances neither underflow nor overflow (1 for zeros)."""
    largest = values.abs().amax(dim=(-1, -2))
    _, exponent = torch.frexp(largest)
    return torch.ldexp(torch.ones_like(largest), exponent)


def _check_bandwidth(bandwidth: Bandwidth) -> None:
    if isinstance(bandwidth, str):
        if bandwidth not in BANDWIDTH_RULES:
            raise InputError(
                f"unknown bandwidth rule {bandwidth!r}; choose a positive number or "
                f"one of {', '.join(BANDWIDTH_RULES)}"
            )
        return
    try:
        value = float(bandwidth)
    except (TypeError, ValueError):
        raise InputError(f"bandwidth must be a positive number or a rule name, got {bandwidth!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise InputError(f"bandwidth must be a positive number or a rule name, got {bandwidth!r}")


TINY_BANDWIDTH = 1e-100


def _over_sigma_squared(squared: Tensor, sigma: Tensor, factor: float = 1.0) -> Tensor:
    """factor * squared / sigma^2 in place; through (d / sigma)^2 when some sigma is so small
    that 1 / sigma^2 would overflow (a median distance far below the data's range)."""
    if bool((sigma < TINY_BANDWIDTH).any()):
        return squared.sqrt_().div_(sigma).square_().mul_(factor)
    return squared.mul_(factor / sigma.square())


class _DistanceKernel:
    """A kernel k(x, x') = f(||x - x'||^2 / sigma^2) with a bandwidth."""

    bandwidth: Bandwidth

    def __post_init__(self):
        _check_bandwidth(self.bandwidth)

    def gram(self, x: Float[Tensor, "*batch sample feature"]):
        scale = power_of_two_scale(x)  # exact: the result does not change, its range does
        squared = squared_distances(x / scale[..., None, None])
        sigma = pair_bandwidth(self.bandwidth, distinct_pairs(squared), scale.reshape(-1))
        sigma = sigma.reshape(squared.shape[:-2])
        return self.of_squared(squared, sigma[..., None, None]), sigma * scale

    def of_squared(self, squared: Tensor, sigma: Tensor) -> Tensor:
        """Kernel values from squared distances (computed in place)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Gaussian(_DistanceKernel):
    """k(x, x') = exp(-||x - x'||^2 / (2 sigma^2))."""

    bandwidth: Bandwidth = "median"
    name = "gaussian"

    def of_squared(self, squared: Tensor, sigma: Tensor) -> Tensor:
        return _over_sigma_squared(squared, sigma, -0.5).exp_()


@dataclass(frozen=True)
class Laplacian(_DistanceKernel):
    """k(x, x') = exp(-||x - x'|| / sigma) (Euclidean norm; the exponential kernel)."""

    bandwidth: Bandwidth = "median"
    name = "laplacian"

    def of_squared(self, squared: Tensor, sigma: Tensor) -> Tensor:
        return squared.sqrt_().mul_(-1 / sigma).exp_()


@dataclass(frozen=True)
class InverseMultiquadric(_DistanceKernel):
    """k(x, x') = (1 + ||x - x'||^2 / c^2)^(-1/2), with c the bandwidth."""

    bandwidth: Bandwidth = "median"
    name = "inverse_multiquadric"

    def of_squared(self, squared: Tensor, sigma: Tensor) -> Tensor:
        return _over_sigma_squared(squared, sigma).add_(1).rsqrt_()


@dataclass(frozen=True)
class Linear:
    """k(x, x') = <x, x'>."""

    name = "linear"

    def gram(self, x: Float[Tensor, "*batch sample feature"]):
        return x @ x.transpose(-1, -2), None

    def of_products(self, products: Tensor) -> Tensor:
        return products


@dataclass(frozen=True)
class Polynomial:
    """k(x, x') = (scale * <x, x'> + offset)^degree."""

    degree: int = 3
    scale: float = 1.0
    offset: float = 1.0
    name = "polynomial"

    def __post_init__(self):
        if int(self.degree) != self.degree or self.degree < 1:
            raise InputError(f"polynomial degree must be a positive integer, got {self.degree!r}")

    def gram(self, x: Float[Tensor, "*batch sample feature"]):
        return self.of_products(x @ x.transpose(-1, -2)), None

    def of_products(self, products: Tensor) -> Tensor:
        """Kernel values from inner products (computed in place)."""
        return products.mul_(self.scale).add_(self.offset).pow_(int(self.degree))


@dataclass(frozen=True)
class CallableKernel:
    """A user function mapping [n_samples, n_features] to a symmetric [n, n] Gram matrix."""

    function: Callable
    name = "callable"

    def gram(self, x: Float[Tensor, "*batch sample feature"]):
        batch_shape, n = x.shape[:-2], x.shape[-2]
        flat = x.reshape(-1, n, x.shape[-1])
        grams = [self._one(sample_matrix) for sample_matrix in flat]
        return torch.stack(grams).reshape(*batch_shape, n, n), None

    def _one(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        returned = self.function(x)
        if isinstance(returned, Tensor):
            gram = returned.detach()
        else:
            gram = torch.as_tensor(np.asarray(returned))
        gram = gram.to(device=x.device, dtype=x.dtype)
        if gram.shape != (n, n):
            raise InputError(
                f"kernel callable must return a [{n}, {n}] Gram matrix, got shape {tuple(gram.shape)}"
            )
        if not bool(torch.isfinite(gram).all()):
            raise InputError("kernel callable returned NaN or infinite values")
        scale = gram.abs().max().clamp(min=1.0)
        if not bool(((gram - gram.T).abs() <= 1e-6 * scale).all()):
            raise InputError("kernel callable returned a non-symmetric Gram matrix")
        return gram


Kernel = Gaussian | Laplacian | InverseMultiquadric | Linear | Polynomial | CallableKernel
KERNEL_TYPES = (Gaussian, Laplacian, InverseMultiquadric, Linear, Polynomial, CallableKernel)

KERNEL_NAMES = {
    "gaussian": Gaussian,
    "rbf": Gaussian,
    "laplacian": Laplacian,
    "inverse_multiquadric": InverseMultiquadric,
    "imq": InverseMultiquadric,
    "linear": Linear,
    "polynomial": Polynomial,
    "poly": Polynomial,
}


def make_kernel(kernel, bandwidth: Bandwidth = "median") -> Kernel:
    """A kernel object from a name (bandwidth for the bandwidth-based ones), object or callable."""
    if isinstance(kernel, KERNEL_TYPES):
        return kernel
    if isinstance(kernel, str):
        key = kernel.lower()
        if key not in KERNEL_NAMES:
            raise InputError(
                f"unknown kernel {kernel!r}; choose one of {', '.join(KERNEL_NAMES)} "
                "or pass a callable returning a Gram matrix"
            )
        kind = KERNEL_NAMES[key]
        if kind in (Gaussian, Laplacian, InverseMultiquadric):
            return kind(bandwidth)
        return kind()
    if callable(kernel):
        return CallableKernel(kernel)
    raise InputError(f"kernel must be a name, a kernel object or a callable, got {kernel!r}")


def describe(kernel: Kernel) -> str:
    """A short description, e.g. 'gaussian(bandwidth=median)'."""
    if isinstance(kernel, Gaussian | Laplacian | InverseMultiquadric):
        return f"{kernel.name}(bandwidth={kernel.bandwidth})"
    if isinstance(kernel, Polynomial):
        return f"polynomial(degree={kernel.degree}, scale={kernel.scale}, offset={kernel.offset})"
    if isinstance(kernel, CallableKernel):
        return f"callable({getattr(kernel.function, '__name__', repr(kernel.function))})"
    return kernel.name
