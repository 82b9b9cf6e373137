"""Where the toolkit caches converted model weights."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$NEURONOVERLAP_CACHE`, else `$XDG_CACHE_HOME/neuronoverlap`, else `~/.cache/neuronoverlap`."""
    explicit = os.environ.get("NEURONOVERLAP_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "neuronoverlap"
