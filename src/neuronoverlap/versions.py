"""The library versions behind every number: recorded in stores and results, shown by `info`."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

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


def source_commit() -> str | None:
    """The git commit of this code (with '+dirty' when the checkout has uncommitted changes)."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def version_differences(stored: dict[str, str], current: dict[str, str] | None = None) -> list[str]:
    """'name stored -> current' for each tracked library whose version differs."""
    current = library_versions() if current is None else current
    return [
        f"{name} {stored.get(name, '?')} -> {current.get(name, '?')}"
        for name in sorted(set(stored) | set(current))
        if stored.get(name) != current.get(name)
    ]


def check_lock(lock_path: str) -> list[str]:
    """'name: installed X, locked Y' for each locked distribution installed at another version."""
    problems = []
    for line in open(lock_path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if not line or "==" not in line:
            continue
        name, locked = (part.strip() for part in line.split("==", 1))
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # an optional extra not installed here
        if installed.split("+", 1)[0] != locked.split("+", 1)[0]:
            problems.append(f"{name}: installed {installed}, locked {locked}")
    return problems


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--check-lock"] and len(sys.argv) == 3:
        mismatches = check_lock(sys.argv[2])
        for problem in mismatches:
            print(f"neuronoverlap: {problem}", file=sys.stderr)
        sys.exit(2 if mismatches else 0)
    print("\n".join(f"{k} {v}" for k, v in library_versions().items()))
