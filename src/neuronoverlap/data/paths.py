"""Where the data lives: the bundled `probes/data` folder, `--data-dir`, and file look-up.

A data folder may hold our bundled layout (`muse/`, `wiktionary/`, `flores200/`, `belebele/`)
or the layouts the publishers ship (MUSE's `dictionaries/`, FLORES-200's `flores200_dataset/`,
Belebele's `data/`); each reader names the sub-folders it looks in, and `find_file` tries them
in order.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from neuronoverlap.errors import InputError

#: Environment variable naming the data folder; it wins over the bundled one.
DATA_ENV_VAR = "NEURONOVERLAP_DATA_DIR"

# src/neuronoverlap/data/paths.py -> the repository root is three folders up from `data/`.
# (Installed outside a checkout, this points somewhere without probes/data.)
_SOURCE = Path(__file__).resolve()
_REPO_DATA_DIR = _SOURCE.parents[min(3, len(_SOURCE.parents) - 1)] / "probes" / "data"


def bundled_data_dir() -> Path:
    """The default data folder: `$NEURONOVERLAP_DATA_DIR`, else the checkout's `probes/data`."""
    from_env = os.environ.get(DATA_ENV_VAR, "").strip()
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_dir():
            raise InputError(f"{DATA_ENV_VAR}={from_env} is not a folder")
        return path
    if _REPO_DATA_DIR.is_dir():
        return _REPO_DATA_DIR
    raise InputError(
        "no data folder: the bundled probes/data was not found next to the installed package; "
        f"pass --data-dir (or set {DATA_ENV_VAR}) to a folder with the MUSE, FLORES-200 "
        "and Belebele files"
    )


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """`data_dir` as a Path if it is an existing folder; the bundled folder when None."""
    if data_dir is None:
        return bundled_data_dir()
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise InputError(f"data folder {str(path)!r} does not exist or is not a folder")
    return path


def find_file(root: Path, subdirs: Iterable[str], names: Iterable[str]) -> Path | None:
    """The first `root/subdir/name` that is a file (subdirs outer, names inner), or None."""
    names = list(names)
    for subdir in subdirs:
        for name in names:
            candidate = root / subdir / name
            if candidate.is_file():
                return candidate
    return None


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes (for provenance)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_text_lines(path: Path) -> list[str]:
    """A UTF-8 file's lines, without line ends and without a leading byte-order mark.

    Undecodable bytes are an `InputError` naming the file and line.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from err
    return decode_lines(raw, path)


def decode_lines(raw: bytes, path: Path) -> list[str]:
    """Split `raw` (the bytes of `path`) into decoded lines; see `read_text_lines`."""
    chunks = raw.split(b"\n")
    if chunks and chunks[-1] == b"":
        chunks.pop()
    lines = []
    for number, chunk in enumerate(chunks, start=1):
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"{path.name}:{number}: not valid UTF-8 ({err.reason})") from err
        lines.append(line.removesuffix("\r"))
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return lines
