"""HSIC estimators and CKA.

With K, L the Gram matrices of x and y over n samples and H = I - 11^T/n:
- "biased" (default): tr(K H L H) / (n-1)^2, Gretton et al. 2005 (the V-statistic form).
- "biased_n2": tr(K H L H) / n^2, the plain V-statistic (hyppo, Gretton et al. 2008 test).
- "unbiased": Song et al. 2012, computed as <U(K), U(L)> / (n (n-3)) with U the U-centring of
  Szekely & Rizzo 2014 (identical to Song's closed form); needs n >= 4 and can be negative.
CKA (Kornblith et al. 2019) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)); debiased CKA uses the
unbiased estimator in all three places. When a denominator is 0 (a constant input) CKA is 0.
A centred Gram matrix that is zero up to rounding counts as exactly zero (see centre_gram).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from neuronoverlap.hsic.inputs import (
    as_samples,
    check_estimator,
    check_same_samples,
    common_dtype,
)
from neuronoverlap.hsic.kernels import Bandwidth, make_kernel

NO_VARIATION_EPSILONS = 100


def double_centre(
    gram: Float[Tensor, "*batch sample sample"],
) -> Float[Tensor, "*batch sample sample"]:
    """H K H: subtract row and column means, add back the grand mean."""
    row_means = gram.mean(dim=-1, keepdim=True)
    column_means = gram.mean(dim=-2, keepdim=True)
    return gram - row_means - column_means + row_means.mean(dim=-2, keepdim=True)


def u_centre(
    gram: Float[Tensor, "*batch sample sample"],
) -> Float[Tensor, "*batch sample sample"]:
    """U-centring (Szekely & Rizzo 2014): zero diagonal, rows and columns summing to zero."""
    n = gram.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=gram.device)
    off_diagonal = gram.masked_fill(eye, 0)
    row_sums = off_diagonal.sum(dim=-1, keepdim=True)
    column_sums = off_diagonal.sum(dim=-2, keepdim=True)
    total = row_sums.sum(dim=-2, keepdim=True)
    centred = off_diagonal - row_sums / (n - 2) - column_sums / (n - 2) + total / ((n - 1) * (n - 2))
    return centred.masked_fill(eye, 0)


def centre_gram(gram: Tensor, estimator: str) -> Tensor:
    """The centred Gram matrix whose Frobenius inner products give the estimator.

    A centred matrix that is zero up to rounding (Frobenius norm <= 100 n eps max|K|: the
    input has no variation, e.g. a constant) is set to exactly zero, so that HSIC is 0, CKA 0
    and p-values 1 for such inputs rather than ratios of rounding errors.
    """
    centred = u_centre(gram) if estimator == "unbiased" else double_centre(gram)
    n = gram.shape[-1]
    scale = gram.abs().amax(dim=(-1, -2))
    norm = centred.square().sum(dim=(-1, -2)).sqrt()
    flat = norm <= NO_VARIATION_EPSILONS * n * torch.finfo(gram.dtype).eps * scale
    if bool(flat.any()):
        centred = centred.masked_fill(flat[..., None, None], 0)
    return centred


def normaliser(n: int, estimator: str) -> float:
    """The divisor of <centred K, centred L> for each estimator."""
    return {"biased": (n - 1) ** 2, "biased_n2": n**2, "unbiased": n * (n - 3)}[estimator]


def hsic_from_grams(
    gram_x: Float[Tensor, "*batch sample sample"],
    gram_y: Float[Tensor, "*batch sample sample"],
    estimator: str = "biased",
) -> Float[Tensor, "*batch"]:
    """HSIC from two stacks of Gram matrices."""
    n = gram_x.shape[-1]
    check_estimator(estimator, n)
    centred_x = centre_gram(gram_x, estimator)
    centred_y = centre_gram(gram_y, estimator)
    return (centred_x * centred_y).sum(dim=(-1, -2)) / normaliser(n, estimator)


def samples_pair(x, y, device=None) -> tuple[Tensor, Tensor]:
    """Checked x, y as [n, d] tensors of one dtype on one device."""
    x_tensor = as_samples(x, "x", device)
    y_tensor = as_samples(y, "y", device=x_tensor.device)
    x_tensor, y_tensor = common_dtype(x_tensor, y_tensor)
    check_same_samples(x_tensor.shape[-2], y_tensor.shape[-2])
    return x_tensor, y_tensor


def gram_pair(x: Tensor, y: Tensor, kernel, bandwidth: Bandwidth, kernel_y):
    """Gram matrices of checked tensors -> (K, L, kernel_x, kernel_y, sigma_x, sigma_y)."""
    kernel_x = make_kernel(kernel, bandwidth)
    kernel_y = kernel_x if kernel_y is None else make_kernel(kernel_y, bandwidth)
    gram_x, sigma_x = kernel_x.gram(x)
    gram_y, sigma_y = kernel_y.gram(y)
    return gram_x, gram_y, kernel_x, kernel_y, sigma_x, sigma_y


def hsic(
    x,
    y,
    kernel="gaussian",
    bandwidth: Bandwidth = "median",
    estimator: str = "biased",
    *,
    kernel_y=None,
) -> float:
    """HSIC between x [n, d_x] and y [n, d_y] (or [n]).

    kernel: name, kernel object or callable (used for both, unless kernel_y is given);
    bandwidth: number, "median" or "gretton" for bandwidth-based kernels named by string;
    estimator: "biased" (1/(n-1)^2, default), "biased_n2" (1/n^2) or "unbiased" (Song et al.).

    Args:
        x, y: samples in rows, numpy arrays or torch tensors with the same number of rows.
        kernel, bandwidth, estimator, kernel_y: as above (definitions in docs/hsic.md).

    Returns:
        The HSIC estimate (a float; >= 0 for the biased estimators, 0 in expectation for
        independent x and y with the unbiased one).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 2))
    >>> dependent = hsic(x, x[:, :1] ** 2)      # dependent but uncorrelated
    >>> independent = hsic(x, rng.normal(size=(200, 1)))
    >>> dependent > 3 * independent
    True
    >>> abs(hsic(x, rng.normal(size=200), estimator="unbiased")) < 0.001
    True
    """
    x_tensor, y_tensor = samples_pair(x, y)
    check_estimator(estimator, x_tensor.shape[0])
    gram_x, gram_y, *_ = gram_pair(x_tensor, y_tensor, kernel, bandwidth, kernel_y)
    return float(hsic_from_grams(gram_x, gram_y, estimator))


def cka_from_grams(
    gram_x: Float[Tensor, "*batch sample sample"],
    gram_y: Float[Tensor, "*batch sample sample"],
    debiased: bool = False,
) -> Float[Tensor, "*batch"]:
    """CKA from two stacks of Gram matrices; 0 where either input has no variation."""
    estimator = "unbiased" if debiased else "biased"
    check_estimator(estimator, gram_x.shape[-1])
    centred_x = centre_gram(gram_x, estimator)
    centred_y = centre_gram(gram_y, estimator)
    cross = (centred_x * centred_y).sum(dim=(-1, -2))
    norm_x = (centred_x * centred_x).sum(dim=(-1, -2)).clamp(min=0).sqrt()
    norm_y = (centred_y * centred_y).sum(dim=(-1, -2)).clamp(min=0).sqrt()
    denominator = norm_x * norm_y
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return torch.where(denominator > 0, cross / safe, torch.zeros_like(cross))


def cka(
    x,
    y,
    kernel="linear",
    debiased: bool = False,
    *,
    bandwidth: Bandwidth = "median",
    kernel_y=None,
) -> float:
    """Centred kernel alignment (normalised HSIC) between x [n, d_x] and y [n, d_y].

    In [0, 1] (biased) or [-1, 1] (debiased), 1 for identical inputs, 0 for a constant input.
    """
    x_tensor, y_tensor = samples_pair(x, y)
    check_estimator("unbiased" if debiased else "biased", x_tensor.shape[0])
    gram_x, gram_y, *_ = gram_pair(x_tensor, y_tensor, kernel, bandwidth, kernel_y)
    return float(cka_from_grams(gram_x, gram_y, debiased))
