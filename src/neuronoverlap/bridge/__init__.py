"""Bridge-language selection: scoring on arrays (scoring.py), the typed result (result.py) and
the store loader (loader.py). Definitions: docs/hsic.md, "Calibrated bridge selection"."""

from neuronoverlap.bridge.loader import (
    DEFAULT_WINDOW_FRACTIONS,
    bridge_sets,
    layer_window,
    pair_activations,
    pair_units,
    select_bridge,
)
from neuronoverlap.bridge.result import METHODS, BootstrapSummary, BridgeSelection, rank
from neuronoverlap.bridge.scoring import select_from_activations

__all__ = [
    "DEFAULT_WINDOW_FRACTIONS",
    "METHODS",
    "BootstrapSummary",
    "BridgeSelection",
    "bridge_sets",
    "layer_window",
    "pair_activations",
    "pair_units",
    "rank",
    "select_bridge",
    "select_from_activations",
]
