"""Where the full-size analysis keeps its parts (`fullsize_analysis`): one JSON file per finished
part, reused when it was computed with the same options, so that a killed analysis resumes; and
the checks that a study and a store are of one model."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from neuronoverlap.errors import InputError


def analysis_dir(out, analysis) -> Path:
    return Path(analysis) if analysis is not None else Path(out) / "analysis"


def write_json(path: Path, document) -> None:
    from neuronoverlap.store.journal import atomic_write_json

    atomic_write_json(path, document, indent=1)


def cached(path: Path, options: dict, compute):
    """A part's value from `path` when it was computed with `options`, else computed and kept."""
    from neuronoverlap.store.journal import read_json

    if path.is_file():
        saved = read_json(path, "analysis file")
        if saved.get("options") == options:
            return saved["value"]
    value = compute()
    write_json(path, {"options": options, "value": value})
    return value


#: What a rerun rewrites without changing any result (when, and by which code): left out of a key.
PROVENANCE = ("written_at", "commit", "library_versions", "toolkit_version")


def digest(paths: Sequence[Path], extra: dict) -> str:
    """The key of a part's inputs: `extra` and the files' contents, a JSON document's top-level
    PROVENANCE left out, so that a finished phase rerun (it rewrites scores.json with a new
    `written_at`) does not start the parts after it again."""
    h = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for path in paths:
        data = path.read_bytes()
        if path.suffix == ".json":
            document = json.loads(data)
            if isinstance(document, dict):
                document = {k: v for k, v in document.items() if k not in PROVENANCE}
            data = json.dumps(document, sort_keys=True, ensure_ascii=False).encode()
        h.update(data)
    return h.hexdigest()[:16]


def store_fingerprint(store) -> str:
    from neuronoverlap.store import Store

    if not Path(store).is_file():
        raise InputError(f"no store at {store}")
    return Store(store).fingerprint


def check_study_model(folder: Path, fingerprint: str, store) -> None:
    """The study in `folder` must be of the store's model (`study-model.json`)."""
    path = folder / "study-model.json"
    if not path.is_file():
        return
    theirs = json.loads(path.read_text(encoding="utf-8")).get("model")
    if theirs != fingerprint:
        raise InputError(f"store {store} is of {fingerprint}, the study in {folder} of {theirs}")
