"""Corrections for testing several hypotheses at once."""

from __future__ import annotations

from collections.abc import Mapping


def holm(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm's step-down adjustment of p-values over the candidates (family-wise error)."""
    names = sorted(pvalues, key=lambda b: pvalues[b])
    m, running, out = len(names), 0.0, {}
    for i, b in enumerate(names):
        running = max(running, min(1.0, (m - i) * pvalues[b]))
        out[b] = running
    return {b: out[b] for b in pvalues}
