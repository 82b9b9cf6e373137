"""The one converter of the library's values to JSON: `json.dumps(..., default=json_default)`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def json_default(value: Any) -> Any:
    """A JSON value for what json cannot write itself: numpy scalars and arrays (as Python numbers
    and lists), paths (as strings), sets (sorted lists), bytes (UTF-8 text); else TypeError."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def to_plain(value: Any) -> Any:
    """Plain JSON data, recursively: numpy scalars/arrays -> Python, NaN/inf -> None, tuples ->
    lists, paths -> strings, bytes -> text, mapping keys -> strings."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
