"""Shared fixtures: tiny models (seconds) and the embedded Gemma-3-270M (slow, loaded once)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
