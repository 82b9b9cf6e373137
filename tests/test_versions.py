"""Library versions: recorded in every store and probe set, shown by info and store-info, and the
lock the set-up installs is the set that is installed."""

from __future__ import annotations

import json
from pathlib import Path

import h5py

from neuronoverlap.cli import main
from neuronoverlap.versions import TRACKED, check_lock, library_versions, version_differences

LOCK = Path(__file__).resolve().parent.parent / "requirements" / "lock.txt"


def test_the_installed_libraries_are_the_locked_ones():
    assert LOCK.is_file()
    locked = {line.split("==")[0] for line in LOCK.read_text().splitlines() if "==" in line}
    assert {"transformers", "transformer-lens", "h5py", "numpy", "tokenizers"} <= locked
    assert check_lock(str(LOCK)) == []


def test_a_changed_version_is_reported(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text(f"numpy==0.0.1\nh5py=={library_versions()['h5py']}\n")
    assert check_lock(str(lock)) == [f"numpy: installed {library_versions()['numpy']}, locked 0.0.1"]
    stored = {**library_versions(), "transformers": "5.24.0"}
    assert version_differences(stored) == [f"transformers 5.24.0 -> {library_versions()['transformers']}"]
    assert set(library_versions()) == set(TRACKED)


def test_store_and_probe_sets_record_versions_and_store_info_shows_differences(tmp_path, capsys, monkeypatch):
    args = ["probe", "--model", "tiny-llama", "--pair", "en-de", "--bridges", "fr", "-n", "2"]
    store = tmp_path / "v.h5"
    assert main([*args, "--store", str(store), "--quiet"]) == 0
    with h5py.File(store, "r") as f:
        assert json.loads(f.attrs["library_versions"]) == library_versions()
        params = json.loads(f["tiny-llama/probes/en-de"].attrs["params"])
        assert json.loads(params["library_versions"]) == library_versions()
        assert params["recording"].startswith("generate, then one teacher-forced forward")
    capsys.readouterr()
    assert main(["store-info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "libraries:" in out and "differs:" not in out

    # A store written under another transformers is readable, and the difference is shown.
    other = {**library_versions(), "transformers": "5.24.0"}
    monkeypatch.setattr("neuronoverlap.store.writer.library_versions", lambda: other)
    monkeypatch.setattr("neuronoverlap.probes.recorder.library_versions", lambda: other)
    old = tmp_path / "old.h5"
    assert main([*args, "--store", str(old), "--quiet"]) == 0
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["store-info", str(old)]) == 0
    out = capsys.readouterr().out
    assert "differs:" in out and "transformers 5.24.0 ->" in out and "(probe set en-de)" in out


def test_info_prints_versions_and_the_cache_verdict(capsys):
    assert main(["info", "--model", "tiny-llama", "--max-new-tokens", "2"]) == 0
    out = capsys.readouterr().out
    assert "KV cache verified" in out
    assert f"transformers {library_versions()['transformers']}" in out
