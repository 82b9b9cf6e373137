"""Turning user input (numpy arrays, tensors, lists) into checked tensors.

Every public HSIC function goes through these helpers, so the rules are the same everywhere:
floating tensors keep their dtype (float16/bfloat16 are computed in float32), anything else
becomes float64; tensors stay on their device unless `device` is given; NaN/inf values, empty
axes, wrong ranks and mismatched sample counts raise `InputError` with a one-line message.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from neuronoverlap.errors import InputError

ESTIMATORS = ("biased", "biased_n2", "unbiased")
MINIMUM_SAMPLES = {"biased": 2, "biased_n2": 2, "unbiased": 4}


def as_tensor(
    values, name: str, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """One input as a floating tensor, checked for NaN/inf."""
    if isinstance(values, Tensor):
        tensor = values.detach()
    else:
        try:
            tensor = torch.as_tensor(np.asarray(values))
        except (TypeError, ValueError) as error:
            raise InputError(f"{name} is not a numeric array: {error}") from None
    if tensor.dtype in (torch.float16, torch.bfloat16):
        tensor = tensor.float()
    elif not tensor.is_floating_point():
        if tensor.is_complex():
            raise InputError(f"{name} is complex; HSIC needs real values")
        tensor = tensor.double()
    if dtype is not None:
        tensor = tensor.to(dtype)
    if device is not None:
        tensor = tensor.to(device)
    if tensor.numel() == 0:
        raise InputError(f"{name} is empty (shape {tuple(tensor.shape)})")
    if not bool(torch.isfinite(tensor).all()):
        raise InputError(f"{name} contains NaN or infinite values")
    return tensor


def _with_dimensions(values, name: str, device, dimensions: int, lift, expected: str) -> Tensor:
    """as_tensor with `dimensions` axes; one fewer is lifted by `lift`; else an InputError."""
    tensor = as_tensor(values, name, device)
    if tensor.ndim == dimensions - 1:
        tensor = lift(tensor)
    if tensor.ndim != dimensions:
        raise InputError(f"{name} must have shape {expected}, got {tuple(tensor.shape)}")
    return tensor


def as_samples(
    values, name: str, device: str | torch.device | None = None
) -> Float[Tensor, "sample feature"]:
    """[n_samples, n_features] (or [n_samples], read as one feature)."""
    return _with_dimensions(
        values, name, device, 2, lambda tensor: tensor[:, None], "[n_samples, n_features] or [n_samples]"
    )


def as_sample_batch(
    values, name: str, device: str | torch.device | None = None
) -> Float[Tensor, "batch sample feature"]:
    """[batch, n_samples, n_features] (or [batch, n_samples], read as one feature)."""
    return _with_dimensions(
        values,
        name,
        device,
        3,
        lambda tensor: tensor[:, :, None],
        "[batch, n_samples, n_features] or [batch, n_samples]",
    )


def as_rows(values, name: str, device: str | torch.device | None = None) -> Float[Tensor, "neuron sample"]:
    """[n_neurons, n_samples]: each row one neuron's activations over the samples (or one
    neuron's [n_samples])."""
    return _with_dimensions(values, name, device, 2, lambda tensor: tensor[None, :], "[n_neurons, n_samples]")


def common_dtype(*tensors: Tensor) -> tuple[Tensor, ...]:
    """Promote to one floating dtype and one device (the first tensor's)."""
    dtype = tensors[0].dtype
    for tensor in tensors[1:]:
        dtype = torch.promote_types(dtype, tensor.dtype)
    device = tensors[0].device
    return tuple(tensor.to(device=device, dtype=dtype) for tensor in tensors)


def check_same_samples(n_x: int, n_y: int, what: str = "x and y") -> int:
    if n_x != n_y:
        raise InputError(f"{what} must have the same number of samples, got {n_x} and {n_y}")
    return n_x


def check_estimator(estimator: str, n_samples: int) -> None:
    if estimator not in ESTIMATORS:
        raise InputError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    needed = MINIMUM_SAMPLES[estimator]
    if n_samples < needed:
        raise InputError(f"the {estimator} HSIC estimator needs at least {needed} samples, got {n_samples}")


def check_seed(seed) -> None:
    """A seed is None, a non-negative integer or a numpy SeedSequence."""
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be None or an integer >= 0, got {seed!r}")


def check_min_samples(n: int, needed: int, what: str) -> None:
    if n < needed:
        raise InputError(f"{what} needs at least {needed} samples, got {n}")


def as_squared_distances(values, name: str = "squared distances") -> Float[Tensor, "*batch sample sample"]:
    """Square matrices (a batch of them) of finite squared distances, >= 0."""
    tensor = as_tensor(values, name)
    if tensor.ndim < 2 or tensor.shape[-1] != tensor.shape[-2]:
        raise InputError(f"{name} must be square matrices [..., n, n], got {tuple(tensor.shape)}")
    if bool((tensor < 0).any()):
        raise InputError(f"{name} must be >= 0 (squared distances)")
    return tensor
