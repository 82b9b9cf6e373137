"""Shared fixtures: tiny models (seconds) and the embedded Gemma-3-270M (slow, loaded once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: The checkout the tests run from; nothing under it is read or written by a test but its code and data.
CHECKOUT = Path(__file__).resolve().parents[1]

#: Folders of the checkout where the toolkit writes by default (relative `store/run.h5`, `out/...`).
OUTPUT_FOLDERS = ("store", "out")


def folder_state(root: Path, folders=OUTPUT_FOLDERS) -> dict[str, tuple[int, int]]:
    """Every file and folder under `root / folder` for each folder: relative path -> (size, mtime in
    ns), folders with size -1. Cheap on a large store (stat only, no bytes read)."""
    state = {}
    for name in folders:
        top = root / name
        for path in [top, *sorted(top.rglob("*"))] if top.exists() else []:
            stat = path.lstat()
            size = -1 if path.is_dir() else stat.st_size
            state[str(path.relative_to(root))] = (size, stat.st_mtime_ns)
    return state


def state_changes(before: dict, after: dict) -> list[str]:
    """'added x', 'removed y', 'changed z' between two `folder_state`s, sorted by path."""
    changes = [f"added {p}" for p in after.keys() - before.keys()]
    changes += [f"removed {p}" for p in before.keys() - after.keys()]
    changes += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(changes, key=lambda c: c.split(" ", 1)[1])


@pytest.fixture(scope="session", autouse=True)
def checkout_outputs_untouched(tmp_path_factory):
    """The suite is hermetic: session fixtures run in a temporary working folder too, and at the
    end the checkout's store/ and out/ are as they were (a test that wrote or removed anything
    there fails the session with the list of paths)."""
    before = folder_state(CHECKOUT)
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("session-cwd"))
    try:
        yield
    finally:
        os.chdir(cwd)
    changes = state_changes(before, folder_state(CHECKOUT))
    assert not changes, (
        "the tests changed the checkout's store/ or out/ (each test must work under tmp_path; "
        "or another process wrote there while the tests ran): " + "; ".join(changes[:20])
    )


@pytest.fixture(autouse=True)
def in_a_temporary_folder(tmp_path_factory, monkeypatch):
    """Each test runs in a fresh empty working directory: default and relative paths (`store/run.h5`,
    `out/report`, a user's `store/run.h5.partial`) never reach the checkout."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def tiny_llama():
    from neuronoverlap.models import load_model

    return load_model("tiny-llama")


@pytest.fixture(scope="session")
def tiny_mistral():
    from neuronoverlap.models import load_model

    return load_model("tiny-mistral")


@pytest.fixture(scope="session")
def gemma():
    from neuronoverlap.models import load_model

    return load_model("embedded")


@pytest.fixture(scope="session")
def tiny_store_template(tmp_path_factory):
    """A small tiny-llama store: probe sets de<->fr and en with both, corpora de, fr, en, a
    bridge-selection result and a neuron set. Copy it before changing it."""
    import numpy as np

    from neuronoverlap.cli import main
    from neuronoverlap.sets import NeuronSet
    from neuronoverlap.store import StoreWriter

    path = tmp_path_factory.mktemp("template") / "run.h5"
    common = ["--store", str(path), "--quiet"]
    model = ["--model", "tiny-llama"]
    assert (
        main(
            [
                "probe",
                *model,
                "--pair",
                "de-fr",
                "--bridges",
                "en",
                "-n",
                "4",
                "--max-new-tokens",
                "3",
                *common,
            ]
        )
        == 0
    )
    assert main(["corpus", *model, "--langs", "de,fr,en", "-n", "4", *common]) == 0
    assert (
        main(
            [
                "select-bridge",
                "--pair",
                "de-fr",
                "--bridges",
                "en",
                "--permutations",
                "5",
                "--window",
                "1-2",
                *common,
            ]
        )
        == 0
    )
    mask = np.zeros((4, 256), dtype=bool)
    mask[1, [3, 77, 200]] = True
    with StoreWriter.for_existing(path) as writer:
        writer.put_sets({"test-set": NeuronSet(mask, "three neurons")})
    return path


def folder_snapshot(folder) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes): a store, its journal, its lock."""
    from pathlib import Path

    root = Path(folder)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading a model fails the test: input must be checked before any model is loaded."""
    import neuronoverlap.models as models

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(models, "load_model", refuse)


@pytest.fixture
def refused(capsys):
    """refused(argv, folder, *expected): main(argv) exits 2 with one stderr line holding every
    expected text, no traceback, and every file under `folder` unchanged (none added)."""
    from neuronoverlap.cli import main

    def check(argv, folder, *expected):
        before = folder_snapshot(folder)
        capsys.readouterr()
        code = main([str(a) for a in argv])
        out = capsys.readouterr()
        lines = out.err.strip().splitlines()
        assert code == 2, (code, out.err[-2000:])
        assert len(lines) == 1 and "Traceback" not in out.err, out.err
        for text in expected:
            assert text in lines[0], (text, lines[0])
        assert folder_snapshot(folder) == before, "files changed, appeared or disappeared"
        return lines[0]

    return check
