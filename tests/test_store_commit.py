"""In-place commits under an undo log: a kill at any write leaves the old store readable and
restorable byte for byte; the bytes a commit rewrites do not grow with the store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from neuronoverlap.store import Store, StoreWriter, undo
from neuronoverlap.store.verify import verify_store
from neuronoverlap.store.writer import ModelInfo

INFO = ModelInfo("synthetic", "fp-1", n_layers=3, d_mlp=32)


def add_probe_set(writer: StoreWriter, src: str, tgt: str, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    params = {"src": src, "tgt": tgt, "n_samples": n, "seed": seed}
    journal = writer.probe_journal(src, tgt, params)
    for start in range(0, n, 4):
        size = min(4, n - start)
        words = np.array([f"w{start + i}" for i in range(size)], dtype=str)
        journal.add_block(
            start,
            mean=rng.normal(size=(size, INFO.n_layers, INFO.d_mlp)).astype(np.float32),
            prob=rng.integers(0, 9, size=(size, INFO.n_layers, INFO.d_mlp)).astype(np.float32) / 8,
            tokens=np.full(size, 8, dtype=np.int32),
            prompts=words,
            generations=words,
            source_words=words,
            target_words=words,
        )
    writer.finish_probe_set(src, tgt)


def _value(ds: h5py.Dataset) -> bytes:
    data = np.asarray(ds[()])
    return repr(data.tolist()).encode() if data.dtype.kind == "O" else data.tobytes()


def contents(path: Path) -> dict[str, bytes]:
    """Every dataset's value."""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: out.__setitem__(name, _value(obj)) if isinstance(obj, h5py.Dataset) else None
        )
    return out


def base_store(folder: Path) -> Path:
    path = folder / "run.h5"
    with StoreWriter(path, INFO) as writer:
        add_probe_set(writer, "de", "fr", 10, seed=1)
        writer.put_json("results", "note", {"a": 1})
    return path


def the_commit(writer: StoreWriter) -> None:
    add_probe_set(writer, "fr", "de", 9, seed=2)


def test_a_kill_at_any_write_of_a_commit(tmp_path, monkeypatch):
    """The store and its undo log as a kill would leave them before each write HDF5 makes:
    readers see the old store, the next writer restores it byte for byte, and the commit done
    again gives the store of an uninterrupted run."""
    (tmp_path / "base").mkdir()
    before = base_store(tmp_path / "base")
    old_bytes, old_contents = before.read_bytes(), contents(before)
    done = tmp_path / "done"
    shutil.copytree(before.parent, done)
    snapshots: list[tuple[bytes, bytes]] = []
    real_write = undo.UndoFile.write

    def write(self, data):
        snapshots.append((Path(self.fh.name).read_bytes(), self.log_path.read_bytes()))
        return real_write(self, data)

    monkeypatch.setattr(undo.UndoFile, "write", write)
    with StoreWriter(done / "run.h5", INFO) as writer:
        the_commit(writer)
    monkeypatch.setattr(undo.UndoFile, "write", real_write)
    expected = contents(done / "run.h5")
    assert len(snapshots) >= 5 and not undo.undo_path(done / "run.h5").exists()
    for k, (store_bytes, log_bytes) in enumerate(snapshots):
        folder = tmp_path / f"kill-{k}"
        folder.mkdir()
        path = folder / "run.h5"
        path.write_bytes(store_bytes)
        undo.undo_path(path).write_bytes(log_bytes)
        assert Store(path).probe_sets() == ["de-fr"], k  # the old store, seen through the log
        assert (
            Store(path).probes("de", "fr").array("mean").tobytes()
            == old_contents["synthetic/probes/de-fr/mean"]
        )
        with StoreWriter(path, INFO) as writer:  # rolled back on opening
            assert path.read_bytes() == old_bytes, k
            the_commit(writer)
        assert contents(path) == expected, k


def test_a_real_kill_9_during_a_commit(tmp_path):
    """A process killed (SIGKILL) in the middle of its in-place commit."""
    path = base_store(tmp_path)
    old = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from neuronoverlap.store import StoreWriter, undo
        from test_store_commit import INFO, the_commit
        real, count = undo.UndoFile.write, [0]
        def write(self, data):
            count[0] += 1
            if count[0] == 6:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(self, data)
        undo.UndoFile.write = write
        with StoreWriter({str(path)!r}, INFO) as writer:
            the_commit(writer)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ}, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert undo.undo_path(path).exists() and path.read_bytes() != old
    assert Store(path).probe_sets() == ["de-fr"]
    report = verify_store(path)  # the old store, through the log, sound
    assert report.ok and "a commit was interrupted" in report.lines()[0]
    with StoreWriter(path, INFO) as writer:
        assert path.read_bytes() == old
        the_commit(writer)
    assert Store(path).probe_sets() == ["de-fr", "fr-de"]


def test_what_a_commit_rewrites_does_not_grow_with_the_store(tmp_path, monkeypatch):
    """The old bytes a commit overwrites (its undo log) are the same few KiB whether the store
    holds 0.1 MB or 40 MB: a commit costs O(new data)."""
    logged: dict[str, int] = {}
    real_close = undo.UndoFile.close_log

    def close_log(self):
        logged[self.log_path.parent.name] = self.log.tell()
        return real_close(self)

    monkeypatch.setattr(undo.UndoFile, "close_log", close_log)
    for name, filler in (("small", 0), ("large", 40 * 2**20)):
        folder = tmp_path / name
        folder.mkdir()
        path = base_store(folder)
        with StoreWriter(path, INFO) as writer:
            writer.edit(
                "results", lambda g, n=filler: g.create_dataset("filler", data=np.ones(n // 8)), filler
            )
            writer.put_json("results", "other", {"b": 2})
        size = path.stat().st_size
        with StoreWriter(path, INFO) as writer:
            the_commit(writer)
        assert path.stat().st_size > size
    assert logged["large"] < 64 * 2**10 and logged["large"] <= 2 * logged["small"], logged


def test_a_commit_waits_for_readers(tmp_path, monkeypatch):
    """A reader holds the store's shared flock while it reads; a commit waits for it, then
    refuses with one line after READER_WAIT_S (the journal keeps the work)."""
    import fcntl

    from neuronoverlap.errors import InputError
    from neuronoverlap.store import commit as commit_module

    path = base_store(tmp_path)
    monkeypatch.setattr(commit_module, "READER_WAIT_S", 0.3)
    with open(path, "rb") as reader:
        fcntl.flock(reader, fcntl.LOCK_SH)
        with StoreWriter(path, INFO) as writer, pytest.raises(InputError, match="held open by a reader"):
            the_commit(writer)
    assert Store(path).probe_sets() == ["de-fr"]
    with StoreWriter(path, INFO) as writer:
        assert writer.probe_progress("fr", "de", {"src": "fr", "tgt": "de", "n_samples": 9, "seed": 2}) == (
            "partial",
            9,
        )
        writer.finish_probe_set("fr", "de")
    assert Store(path).probe_sets() == ["de-fr", "fr-de"]


def test_a_commit_that_shrinks_the_store_logs_the_cut_and_rolls_back(tmp_path):
    """HDF5 cuts the file when freed space ends it (seen replacing a bridge selection): the cut
    tail is logged, so a kill after the cut, or after later writes over the cut region, still
    rolls back to the old bytes, and readers see the old store through the log."""
    path = tmp_path / "run.h5"
    old = bytes(range(256)) * 40
    path.write_bytes(old)
    log = undo.undo_path(path)
    fh = open(path, "r+b", buffering=0)
    store = undo.UndoFile(fh, log)
    store.seek(5000)
    store.write(b"x" * 3000)  # overwrites old bytes, some of them in the tail cut below
    store.truncate(6000)
    store.seek(5990)
    store.write(b"y" * 500)  # grows again over the cut region
    fh.flush()
    size, records = undo.read_undo(log)
    assert size == len(old)
    view = undo.OldView(open(path, "rb"), size, records)
    assert view.read(len(old)) == old  # readers: the old store through the log
    store.close_log()
    fh.close()
    assert undo.roll_back(path)
    assert path.read_bytes() == old and not log.exists()
