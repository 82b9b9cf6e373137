"""The library versions behind every number: recorded in stores and results, shown by `info`."""

from __future__ import annotations

from importlib import metadata

#: The libraries whose behaviour changes what the toolkit records or computes.
TRACKED = ("torch", "transformers", "transformer-lens", "tokenizers", "numpy", "h5py")


def library_versions() -> dict[str, str]:
    """{distribution: version} of the tracked libraries installed here ('absent' if not)."""
    versions = {}
    for name in TRACKED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def version_differences(stored: dict[str, str], current: dict[str, str] | None = None) -> list[str]:
    """'name stored -> current' for each tracked library whose version differs."""
    current = library_versions() if current is None else current
    return [
        f"{name} {stored.get(name, '?')} -> {current.get(name, '?')}"
        for name in sorted(set(stored) | set(current))
        if stored.get(name) != current.get(name)
    ]
