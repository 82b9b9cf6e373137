"""A truncated store (copied in part, cut by a full disk) is refused by every reader and writer
with one line saying how to recover; nothing is rolled back onto it (issue 32, class 4)."""

from __future__ import annotations

import os
import shutil
import struct
import zlib

import pytest

from conftest import folder_snapshot
from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.store import Store, StoreWriter, undo


def _interrupted_commit(store) -> int:
    """Leave `store` as a kill in the middle of an in-place commit does: 16 old bytes at 100
    overwritten (saved in the undo log) and new bytes past the old end. Returns the old size."""
    old_size = store.stat().st_size
    with open(store, "r+b") as fh:
        fh.seek(100)
        saved = fh.read(16)
        fh.seek(100)
        fh.write(b"\xff" * 16)
        fh.seek(0, 2)
        fh.write(b"\0" * 4096)
    record = struct.pack("<QQI", 100, 16, zlib.crc32(saved)) + saved
    undo.undo_path(store).write_bytes(undo.MAGIC + struct.pack("<Q", old_size) + record)
    return old_size


@pytest.mark.parametrize("interrupted", [False, True], ids=["plain", "under-an-undo-log"])
def test_a_store_cut_to_90_percent_is_refused(interrupted, tiny_store_template, tmp_path, refused):
    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    size = _interrupted_commit(store) if interrupted else store.stat().st_size
    os.truncate(store, int(size * 0.9))
    with pytest.raises(InputError, match="is truncated"):
        Store(store)
    with pytest.raises(InputError, match="is truncated"):
        StoreWriter.for_existing(store)
    refused(["store-info", store], tmp_path, "is truncated", "restore it from a copy")
    refused(["verify", store], tmp_path, "is truncated")
    argv = ["corpus", "--model", "tiny-llama", "--langs", "es", "-n", "2", "--quiet", "--store", store]
    refused(argv, tmp_path, "is truncated", "rerun the same command")


def test_resume_on_a_truncated_store_keeps_the_journal(tiny_store_template, tmp_path, monkeypatch, capsys):
    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    argv = ["probe", "--model", "tiny-llama", "--pair", "de-es", "-n", "4", "--max-new-tokens", "2"]
    argv += ["--quiet", "--store", str(store)]

    def killed(self, src, tgt):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(StoreWriter, "finish_probe_set", killed)
        assert main(argv) == 130
    _interrupted_commit(store)
    os.truncate(store, store.stat().st_size // 2)
    before = folder_snapshot(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is truncated" in err[0] and "run.h5.partial is kept" in err[0], err
    assert folder_snapshot(tmp_path) == before  # the undo log and the journal as they were
