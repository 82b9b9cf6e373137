"""A full disk (or another OS error) at every write point of a command: exit code 2, one line
naming the path and the free space needed, the store untouched, no temporary file left, and the
rerun resumes to exactly the store of an uninterrupted run. Also on a real 2 MiB tmpfs (root)."""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import folder_snapshot
from neuronoverlap.cli import main
from neuronoverlap.store import commit as commit_module
from neuronoverlap.store import journal as journal_module
from neuronoverlap.store import space, undo
from neuronoverlap.store import writer as writer_module

COMMANDS = {
    "probe": ["probe", "--pair", "de-es", "-n", "4", "--batch-size", "2", "--max-new-tokens", "3"],
    "corpus": ["corpus", "--langs", "es", "-n", "4", "--batch-size", "2"],
    "select-bridge": [
        "select-bridge",
        "--pair",
        "de-fr",
        "--bridges",
        "en",
        "--permutations",
        "5",
        "--window",
        "1-2",
    ],
}


def _is_temporary(name: str) -> bool:
    return name.endswith((".partial", ".tmp", ".undo", ".undo-log-DO-NOT-DELETE"))


def work(folder: Path) -> dict[str, bytes]:
    """The store and the journal's blocks and parameters (not the lock or the journal's model
    marker, which a writer removes on closing when the journal holds no work)."""
    skip = ("run.h5.lock", str(Path("run.h5.partial", "model.json")))
    return {k: v for k, v in folder_snapshot(folder).items() if k not in skip}


class Faults:
    """Counts the store's write operations; the `fail_at`-th raises ENOSPC (None: never) and
    keeps `folder`'s files as they were at that moment (temporary files left out)."""

    def __init__(self, fail_at: int | None = None, folder: Path | None = None):
        self.fail_at, self.folder, self.points, self.at_failure = fail_at, folder, [], None

    def hit(self, what: str) -> None:
        self.points.append(what)
        if len(self.points) == self.fail_at:
            self.at_failure = {k: v for k, v in work(self.folder).items() if not _is_temporary(k)}
            log = undo.undo_path(self.folder / "run.h5")
            if log.is_file():  # a commit in place under way: the store as it was before it
                parsed = undo.read_undo(log)
                if parsed is not None:
                    self.at_failure["run.h5"] = undo.old_bytes(*parsed, 0, self.at_failure["run.h5"])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), what)


@pytest.fixture
def faulty(monkeypatch, tiny_llama):
    """install(faults): every write point of the store code goes through `faults.hit`; the
    tiny model is the session's (loaded once)."""
    import neuronoverlap.models as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: tiny_llama)
    real_open, real_replace = builtins.open, os.replace
    real_create = h5py.Group.create_dataset

    def install(faults: Faults) -> None:
        def opener(path, mode="r", *args, **kwargs):
            fh = real_open(path, mode, *args, **kwargs)
            if any(c in mode for c in "wa+"):
                try:
                    faults.hit(f"open {Path(path).name}")
                except OSError:
                    fh.close()
                    raise
            return fh

        def replace(src, dst):
            faults.hit(f"rename {Path(dst).name}")
            return real_replace(src, dst)

        def create(self, name, *args, **kwargs):
            faults.hit(f"dataset {name}")
            return real_create(self, name, *args, **kwargs)

        monkeypatch.setattr(journal_module, "open", opener, raising=False)
        monkeypatch.setattr(writer_module, "open", opener, raising=False)
        monkeypatch.setattr(commit_module, "open", opener, raising=False)
        monkeypatch.setattr(journal_module.os, "replace", replace)
        monkeypatch.setattr(h5py.Group, "create_dataset", create)

    return install


def datasets(path: Path) -> dict[str, object]:
    """Every dataset's value (a bridge result without the store path it records)."""
    out = {}

    def add(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]
            if "/results/" in name:
                document = json.loads(out[name])
                document["parameters"].pop("store", None)
                out[name] = json.dumps(document, sort_keys=True)

    with h5py.File(path, "r") as f:
        f.visititems(add)
    return out


def same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


def temporary_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if _is_temporary(p.name) and p.is_file()]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_full_disk_at_every_write_point(command, tiny_store_template, tmp_path, faulty, capsys):
    reference = tmp_path / "reference" / "run.h5"
    reference.parent.mkdir()
    shutil.copy(tiny_store_template, reference)
    counting = Faults()
    faulty(counting)
    assert main([*COMMANDS[command], "--store", str(reference), "--quiet"]) == 0
    expected, points = datasets(reference), list(counting.points)
    assert len(points) >= 3, points
    template = tiny_store_template.read_bytes()
    for k, point in enumerate(points, start=1):
        folder = tmp_path / f"fail-{k}"
        folder.mkdir()
        store = folder / "run.h5"
        store.write_bytes(template)
        faults = Faults(fail_at=k, folder=folder)
        faulty(faults)
        capsys.readouterr()
        assert main([*COMMANDS[command], "--store", str(store), "--quiet"]) == 2, point
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0], (point, err)
        assert "No space left on device" in err[0] and "run.h5" in err[0], (point, err)
        assert "needs about" in err[0] and "MiB" in err[0], (point, err)
        # The store and the journal are exactly as they were when the write failed (the
        # commits before it done, nothing of the failed write left).
        assert work(folder) == faults.at_failure, f"files changed by a failure at {point}"
        faulty(Faults())  # space freed: the same command again
        assert main([*COMMANDS[command], "--store", str(store), "--quiet"]) == 0, point
        assert same(datasets(store), expected), f"resumed store differs after a failure at {point}"
        assert not (folder / "run.h5.partial").exists()


def test_too_little_free_space_is_refused_before_hdf5_writes(
    tiny_store_template, tmp_path, faulty, monkeypatch, capsys
):
    """The commit checks the free space first (HDF5 can crash on a full disk): refused with the
    space needed; the journal keeps the blocks, and the rerun with space merges them."""
    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    original = store.read_bytes()
    faults = Faults()
    faulty(faults)
    real_free = space.free_bytes
    journal = tmp_path / "run.h5.partial" / "probes" / "de-es"

    def free_bytes(directory):  # the disk fills up once both blocks are in the journal
        return 10_000 if len(list(journal.glob("block-*.npz"))) >= 2 else real_free(directory)

    monkeypatch.setattr(space, "free_bytes", free_bytes)
    assert main([*COMMANDS["probe"], "--store", str(store), "--quiet"]) == 2
    line = capsys.readouterr().err.strip()
    assert "not enough free space for committing to" in line and "needs" in line and "MiB" in line
    assert "0.0 MiB free" in line and "\n" not in line
    assert store.read_bytes() == original
    blocks = sorted(p.name for p in tmp_path.glob("run.h5.partial/probes/de-es/block-*.npz"))
    assert len(blocks) == 2 and temporary_files(tmp_path) == []
    monkeypatch.setattr(space, "free_bytes", real_free)
    assert main([*COMMANDS["probe"], "--store", str(store), "--quiet"]) == 0
    assert "de-es: resumed" in capsys.readouterr().out


def test_permission_denied_is_one_line_too(tiny_store_template, tmp_path, monkeypatch, capsys):
    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    before = folder_snapshot(tmp_path)

    real_open = builtins.open

    def denied(path, mode="r", *a, **k):  # the store cannot be opened for its in-place commit
        if mode == "r+b":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(commit_module, "open", denied, raising=False)
    assert main([*COMMANDS["select-bridge"], "--store", str(store), "--quiet"]) == 2
    line = capsys.readouterr().err.strip()
    assert "Permission denied" in line and "run.h5" in line and "\n" not in line
    assert folder_snapshot(tmp_path) == before


def _tmpfs(size: str):
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    mount = Path("/tmp") / f"neuronoverlap-tmpfs-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    return mount


@pytest.mark.slow
def test_a_real_full_disk_on_a_small_tmpfs(tiny_store_template):
    """A 2 MiB tmpfs filled but for 100 KiB: every command fails with one line in a real process
    (no segmentation fault), the store stays byte-identical, and after freeing space the same
    commands complete."""
    mount = _tmpfs("2m")
    try:
        store = mount / "run.h5"
        shutil.copy(tiny_store_template, store)
        original = store.read_bytes()
        filler = mount / "filler"
        with open(filler, "wb") as fh:
            fh.write(b"\0" * max(0, shutil.disk_usage(mount).free - 100 * 2**10))
        for command in ("probe", "corpus", "select-bridge"):
            argv = [
                sys.executable,
                "-m",
                "neuronoverlap",
                *COMMANDS[command],
                "--model",
                "tiny-llama",
                "--store",
                str(store),
                "--quiet",
            ]
            out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            assert out.returncode == 2, (command, out.returncode, out.stderr[-2000:])
            assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
            assert "space" in out.stderr and "MiB" in out.stderr, out.stderr
            assert store.read_bytes() == original
            assert temporary_files(mount) == []
        filler.unlink()
        for command in ("probe", "corpus", "select-bridge"):
            argv = [
                sys.executable,
                "-m",
                "neuronoverlap",
                *COMMANDS[command],
                "--model",
                "tiny-llama",
                "--store",
                str(store),
                "--quiet",
            ]
            out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            assert out.returncode == 0, out.stderr[-2000:]
        assert not (mount / "run.h5.partial").exists()
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()


def test_hdf5s_runtime_error_on_a_full_disk_is_one_line(tiny_store_template, tmp_path, monkeypatch, capsys):
    """HDF5 reports a write failed while flushing as a RuntimeError quoting errno 28 (measured
    on a full tmpfs without the free-space check); it is a full disk like any other."""
    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    before = folder_snapshot(tmp_path)
    real_create = h5py.Group.create_dataset

    def create(self, name, *args, **kwargs):
        if name == "bridge-de-fr":
            raise RuntimeError(
                "Disable slist on flush dest failure failed (file write failed: errno = 28, "
                "error message = 'No space left on device', total write size = 8872)"
            )
        return real_create(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", create)
    assert main([*COMMANDS["select-bridge"], "--store", str(store), "--quiet"]) == 2
    line = capsys.readouterr().err.strip()
    assert "No space left on device; needs about" in line and "\n" not in line
    assert "slist" not in line and folder_snapshot(tmp_path) == before


#: Run inside one child process per command: for each moment, the folder is set up afresh
#: (`setup.json`: files to copy in), the disk is filled (by "another process") at that moment of
#: a commit and the command runs; one JSON line per moment: its exit code and stderr.
#: NO_RESERVE=1 turns the space reservation off (then, measured: segmentation faults).
_FILL_DRIVER = """
import contextlib, io, json, os, shutil, sys
from pathlib import Path

from neuronoverlap.cli import main
from neuronoverlap.store import space, undo

mount, setup = Path(sys.argv[1]), json.loads(sys.argv[2])
moment = None


def fill():
    try:
        with open(mount / "filler-late", "ab") as fh:
            while True:
                fh.write(b"x" * 4096)
                fh.flush()
    except OSError:
        pass


real_reserve, real_init, real_write = space.reserve, undo.UndoFile.__init__, undo.UndoFile.write


def reserve(fh, nbytes, path, what):
    if os.environ.get("NO_RESERVE"):
        return
    real_reserve(fh, nbytes, path, what)


def reserve_and_fill(fh, nbytes, path, what):
    if moment == "before-reserve":
        fill()
    reserve(fh, nbytes, path, what)
    if moment == "after-reserve" and not str(path).endswith("DO-NOT-DELETE"):
        fill()


def init(self, *args, **kwargs):
    real_init(self, *args, **kwargs)
    if moment == "undo-log":
        fill()


def write(self, data):
    if moment == "first-write" and not getattr(self, "filled", False):
        self.filled = True
        fill()
    return real_write(self, data)


space.reserve, undo.UndoFile.__init__, undo.UndoFile.write = reserve_and_fill, init, write
for moment in setup["moments"]:
    for path in list(mount.iterdir()):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for source, name in setup["copies"]:
        shutil.copy(source, mount / name)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(setup["argv"])
    (mount / "filler-late").unlink(missing_ok=True)
    checked = {}
    for name in setup["check"]:
        if (mount / name).exists():
            checked[name] = main(["verify", str(mount / name)])
    shards = [(source, name) for source, name in setup["copies"] if name.startswith("sh.")]
    unchanged = all((mount / name).read_bytes() == Path(source).read_bytes() for source, name in shards)
    left = sorted(p.name for p in mount.rglob("*") if p.is_file() and p.name.endswith(
        (".tmp", ".partial", ".undo", ".undo-log-DO-NOT-DELETE")))
    print(json.dumps({"moment": moment, "code": code, "err": err.getvalue(), "verified": checked,
                      "shards_unchanged": unchanged, "left": left}), flush=True)
"""

FILL_COMMANDS = {
    "new-store": ["probe", "--pair", "de-es", "-n", "4", "--batch-size", "2", "--max-new-tokens", "3"],
    **COMMANDS,
    "merge": ["merge", "MERGED", "SHARD0", "SHARD1"],
}
FILL_MOMENTS = ("before-reserve", "after-reserve", "undo-log", "first-write")


@pytest.mark.slow
@pytest.mark.parametrize("command", list(FILL_COMMANDS))
def test_the_disk_filled_by_another_process_during_a_commit(command, tiny_store_template, tmp_path):
    """A tmpfs filled to the last byte at each moment of a commit (after the free-space check,
    after the reservation, when the undo log appears, at HDF5's first write): the command exits
    0 (its space was reserved) or 2 with one line, never a crash; every store passes `verify`
    (a later step may have failed after a commit: the store then holds that commit, whole), the
    shards are as they were, and no partial file of the command is left."""
    shards = []
    for index in (0, 1):
        argv = [*FILL_COMMANDS["new-store"], "--model", "tiny-llama", "--shard", f"{index}/2"]
        assert main([*argv, "--store", str(tmp_path / "sh.h5"), "--quiet"]) == 0
        shards.append(tmp_path / f"sh.shard-{index}-of-2.h5")
    mount = _tmpfs("8m")
    try:
        store = mount / ("new.h5" if command == "new-store" else "run.h5")
        copies = [(str(s), s.name) for s in shards]
        if command != "new-store":
            copies.append((str(tiny_store_template), "run.h5"))
        names = {
            "MERGED": mount / "merged.h5",
            "SHARD0": mount / shards[0].name,
            "SHARD1": mount / shards[1].name,
        }
        argv = [str(names.get(a, a)) for a in FILL_COMMANDS[command]]
        if command != "merge":
            argv += ["--model", "tiny-llama", "--store", str(store), "--quiet"]
        setup = {"moments": FILL_MOMENTS, "copies": copies, "argv": argv, "check": [store.name, "merged.h5"]}
        out = subprocess.run(
            [sys.executable, "-c", _FILL_DRIVER, str(mount), json.dumps(setup)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, (out.returncode, out.stderr[-3000:])
        results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        assert [r["moment"] for r in results] == list(FILL_MOMENTS), out.stdout[-3000:]
        for r in results:
            assert r["code"] in (0, 2), r
            if r["code"] == 2:
                lines = r["err"].strip().splitlines()
                assert len(lines) == 1 and "Traceback" not in r["err"], r
                assert "space" in lines[0] and "MiB" in lines[0], r
            assert all(code == 0 for code in r["verified"].values()), r
            assert r["shards_unchanged"] and r["left"] == [], r
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        mount.rmdir()


@pytest.mark.parametrize("what", ["probe", "corpus", "per-sentence", "sets"])
def test_each_commit_reserves_what_it_writes(what, tiny_store_template, tiny_llama, tmp_path, monkeypatch):
    """The space a commit reserves covers what the store grows by (else HDF5 would write past
    its reservation, where a full disk can still reach it)."""
    from neuronoverlap.analyses.sentences import record_sentence_counts
    from neuronoverlap.probes import flores_sentences, open_writer, record_corpus, record_probe_set
    from neuronoverlap.probes.prompts import translation_probe_sets
    from neuronoverlap.sets import NeuronSet

    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    reserved = []
    real = space.reserve

    def reserve(fh, nbytes, path, what_for):
        if Path(path) == store:
            reserved.append((store.stat().st_size, nbytes))
        return real(fh, nbytes, path, what_for)

    monkeypatch.setattr(space, "reserve", reserve)
    with open_writer(store, tiny_llama) as writer:
        if what == "probe":
            probe_set = translation_probe_sets("de", "es", 40, seed=0)[0]
            record_probe_set(tiny_llama, writer, probe_set, batch_size=8, progress=False)
        elif what == "corpus":
            record_corpus(tiny_llama, writer, "es", *flores_sentences("es", 8), progress=False)
        elif what == "per-sentence":
            record_sentence_counts(tiny_llama, writer, "es", *flores_sentences("es", 400), progress=False)
        else:
            mask = np.random.default_rng(0).random((4, 256)) < 0.5
            writer.put_sets({f"s{i}": NeuronSet(mask, "random") for i in range(8)})
    assert len(reserved) == 1
    before, granted = reserved[0]
    assert store.stat().st_size - before <= granted, (store.stat().st_size - before, granted)
