"""Activation probabilities stored exactly as integer fire counts (schema 2).

A sample's probability of a neuron is fires / tokens. The recorder counts fires as integers in
the hooks and journals them as integers (`block_fires`); a journal written before that holds
float32 probabilities float32(fires / tokens), whose fire counts are recovered exactly
(`rint(prob * tokens)`, the float32 rounding error times `tokens` is far below 0.5) and checked: a
probability that is not float32(k / tokens) for an integer k is an error, never stored
approximately. Reading computes float32(fires / max(tokens, 1)) in float64, so a
reader gets the very float32 values the recorder computed.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int, UInt

from neuronoverlap.errors import InputError

#: dtype of `fires`: a probe sample counts far fewer than 65536 tokens.
FIRES_DTYPE = np.uint16


def _column(tokens: np.ndarray, ndim: int) -> np.ndarray:
    t = np.maximum(np.asarray(tokens, dtype=np.float64), 1.0)
    return t.reshape(t.shape + (1,) * (ndim - t.ndim))


def probability(
    fires: UInt[np.ndarray, " sample *rest"], tokens: Int[np.ndarray, " sample"]
) -> Float[np.ndarray, " sample *rest"]:
    """float32(fires / tokens), tokens broadcast over the trailing axes (0 tokens count as 1)."""
    return (fires.astype(np.float64) / _column(tokens, fires.ndim)).astype(np.float32)


def fires_from_probability(
    prob: Float[np.ndarray, "sample layer neuron"], tokens: Int[np.ndarray, " sample"], what: str
) -> UInt[np.ndarray, "sample layer neuron"]:
    """The exact integer counts behind float32 probabilities; an `InputError` naming `what`
    when they are not float32(k / tokens) or do not fit FIRES_DTYPE."""
    tokens = np.asarray(tokens)
    if tokens.size and int(tokens.max()) > np.iinfo(FIRES_DTYPE).max:
        raise InputError(f"{what}: a sample counts {int(tokens.max())} tokens, more than uint16 holds")
    fires = np.rint(prob.astype(np.float64) * _column(tokens, prob.ndim))
    if (fires < 0).any() or not np.array_equal(probability(fires, tokens), prob):
        raise InputError(f"{what}: activation probabilities are not exact fire counts / tokens")
    return fires.astype(FIRES_DTYPE)


def block_fires(block: dict[str, np.ndarray], what: str) -> UInt[np.ndarray, "sample layer neuron"]:
    """The fire counts of a journal block: its integer `fires`, or (a journal of an earlier
    version) the counts behind its `prob`; checked to fit FIRES_DTYPE, an `InputError` naming `what`."""
    if "fires" in block:
        fires = np.asarray(block["fires"])
        if fires.dtype.kind not in "iu" or (
            fires.size and (fires.min() < 0 or fires.max() > np.iinfo(FIRES_DTYPE).max)
        ):
            raise InputError(f"{what}: fire counts are not integers in 0..{np.iinfo(FIRES_DTYPE).max}")
        return fires.astype(FIRES_DTYPE)
    if "prob" not in block:
        raise InputError(f"{what} is damaged (no fires); delete it and rerun the same command")
    return fires_from_probability(block["prob"], block["tokens"], what)
