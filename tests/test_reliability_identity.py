"""Silent wrong results, refused: another checkpoint of the same name, another precision, a
journal of other parameters, an output path over a store, two links to one store, and bad
paths or templates (issue 32, class 0). Each refusal is one line, exit code 2, nothing changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import folder_snapshot
from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.store import Store, StoreWriter, undo
from neuronoverlap.store.journal import Journal

SMALL = ["-n", "4", "--max-new-tokens", "2", "--batch-size", "2", "--quiet"]


def _interrupt_commits(monkeypatch) -> None:
    """The first probe set's commit is 'killed': its journal holds all its blocks, none stored."""

    def killed(self, src, tgt):
        raise KeyboardInterrupt

    monkeypatch.setattr(StoreWriter, "finish_probe_set", killed)


# --- the weights are part of the model's identity ----------------------------------------------
@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """Two tiny checkpoints of one folder name and config, with other weights (seeds 0, 1)."""
    from neuronoverlap.models.tiny import save_tiny_checkpoint

    root = tmp_path_factory.mktemp("ckpt")
    return [
        save_tiny_checkpoint("llama", root / side / "ckpt", n_layers=2, seed=seed)
        for side, seed in (("a", 0), ("b", 1))
    ]


def test_weights_fingerprint_is_cached_by_size_and_mtime(tmp_path, monkeypatch):
    import neuronoverlap.models.weights as weights

    monkeypatch.setenv("NEURONOVERLAP_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"a" * 1000)
    (folder / "config.json").write_text("{}")
    first = weights.weights_sha256(folder)
    hashed = []
    real = weights._file_sha256
    monkeypatch.setattr(weights, "_file_sha256", lambda p: hashed.append(p) or real(p))
    assert weights.weights_sha256(folder) == first and hashed == []  # from the cache
    (folder / "config.json").write_text('{"x": 1}')  # not a weight file
    assert weights.weights_sha256(folder) == first and hashed == []
    (folder / "model.safetensors").write_bytes(b"b" * 1000)  # same size, new mtime
    os.utime(folder / "model.safetensors", ns=(1, 1))
    assert weights.weights_sha256(folder) != first and len(hashed) == 1


def test_a_model_object_changed_in_memory_gets_another_fingerprint():
    import torch

    from neuronoverlap.models import load_model
    from neuronoverlap.models.loading import load_tiny

    tiny = load_tiny("llama", n_layers=2)
    before = load_model(tiny.backend).fingerprint()
    assert load_model(tiny.backend).fingerprint() == before
    with torch.no_grad():
        next(tiny.backend.parameters()).add_(1.0)
    assert load_model(tiny.backend).fingerprint() != before


def test_another_checkpoint_of_the_same_name_is_refused(two_checkpoints, tmp_path, monkeypatch, refused):
    monkeypatch.setenv("NEURONOVERLAP_CACHE", str(tmp_path / "cache"))
    a, b = two_checkpoints
    (tmp_path / "work").mkdir()
    store = tmp_path / "work" / "run.h5"
    assert main(["probe", "--model", str(a), "--pair", "de-fr", *SMALL, "--store", str(store)]) == 0
    # a second probe set with other weights of the same name and config: refused
    argv = ["probe", "--model", str(b), "--pair", "de-en", *SMALL, "--store", store]
    refused(argv, store.parent, "another model", "model_fingerprint")
    assert sorted(Store(store).probe_sets()) == ["de-fr", "fr-de"]


def test_a_half_set_is_not_resumed_with_other_weights(two_checkpoints, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEURONOVERLAP_CACHE", str(tmp_path / "cache"))
    a, b = two_checkpoints
    store = tmp_path / "run.h5"
    with monkeypatch.context() as m:
        _interrupt_commits(m)
        assert main(["probe", "--model", str(a), "--pair", "de-fr", *SMALL, "--store", str(store)]) == 130
    journal = tmp_path / "run.h5.partial"
    before = folder_snapshot(journal)
    capsys.readouterr()
    assert main(["probe", "--model", str(b), "--pair", "de-fr", *SMALL, "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert "unfinished work of another model" in err and "model_fingerprint" in err, err
    assert folder_snapshot(journal) == before and not store.exists()


# --- the precision is part of a set's parameters -------------------------------------------------
def test_a_set_is_not_completed_in_another_dtype(tmp_path, monkeypatch, capsys):
    store = tmp_path / "run.h5"
    base = ["probe", "--model", "tiny-llama", "--pair", "de-fr", *SMALL, "--store", str(store)]
    with monkeypatch.context() as m:
        _interrupt_commits(m)
        assert main(base) == 130
    capsys.readouterr()
    assert main([*base, "--dtype", "bfloat16"]) == 2
    err = capsys.readouterr().err.strip()
    assert "dtype: stored 'float32', asked 'bfloat16'" in err and len(err.splitlines()) == 1, err
    assert main(base) == 0  # the same precision finishes it
    params = Store(store).probes("de-fr").params
    assert (params["dtype"], params["device"]) == ("float32", "cpu")
    capsys.readouterr()
    assert main(["store-info", str(store)]) == 0
    assert "float32 on cpu" in capsys.readouterr().out


def test_store_info_says_when_precisions_are_mixed(tmp_path, capsys):
    store = tmp_path / "run.h5"
    common = ["--model", "tiny-llama", *SMALL, "--store", str(store)]
    assert main(["probe", "--pair", "de-fr", *common]) == 0
    assert main(["probe", "--pair", "de-en", "--dtype", "bfloat16", *common]) == 0
    capsys.readouterr()
    assert main(["store-info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "bfloat16 on cpu" in out and "MIXED" in out, out


def test_a_set_stored_before_dtypes_were_recorded_is_still_found(tmp_path):
    """A store written by an older toolkit has no dtype in its parameters: rerunning the
    command that made it finds its sets stored (no refusal for a parameter it never had)."""
    store = tmp_path / "run.h5"
    argv = ["probe", "--model", "tiny-llama", "--pair", "de-fr", *SMALL, "--store", str(store)]
    assert main(argv) == 0
    with h5py.File(store, "r+") as f:  # as an older toolkit wrote it
        for name in ("de-fr", "fr-de"):
            g = f[f"tiny-llama/probes/{name}"]
            params = json.loads(g.attrs["params"])
            del params["dtype"], params["device"]
            g.attrs["params"] = json.dumps(params, sort_keys=True)
    writer_params = None
    with StoreWriter.for_existing(store) as writer:
        stored = writer._stored_attrs("probes", "de-fr")
        writer_params = {**stored, "dtype": "float32", "device": "cpu"}
        assert writer._is_stored("probes", "de-fr", "probe set de-fr", writer_params)


# --- journal blocks carry their parameters --------------------------------------------------------
def _block(n: int) -> dict:
    return {"tokens": np.ones(n, dtype=np.int32), "mean": np.zeros((n, 2, 3), dtype=np.float32)}


def test_blocks_of_other_parameters_are_refused(tmp_path):
    journal = Journal(tmp_path / "run.h5.partial", "probes", "de-fr")
    journal.start({"seed": 0, "n_samples": 8})
    journal.add_block(0, **_block(4))
    assert journal.n_committed() == 4
    # a kill while the journal was deleted left this block; another run starts with seed 1
    (journal.dir / "params.json").unlink()
    journal.start({"seed": 1, "n_samples": 8})
    with pytest.raises(InputError, match="recorded with other parameters"):
        journal.n_committed()
    with pytest.raises(InputError, match="recorded with other parameters"):
        journal.load_block(journal.dir / "block-000000000.npz")


def test_a_kill_during_a_discard_leaves_no_orphan_blocks(tmp_path, tiny_llama, monkeypatch):
    from neuronoverlap.probes.recorder import open_writer

    store = tmp_path / "run.h5"
    with open_writer(store, tiny_llama) as writer:
        journal = writer.probe_journal("de", "fr", {"seed": 0, "n_samples": 8})
        journal.add_block(0, **_block(4))
        real = shutil.rmtree
        with monkeypatch.context() as m:  # killed just after the journal was renamed aside

            def killed(path, *args, **kwargs):
                if str(path).endswith(".discarded") and Path(path).exists():
                    raise KeyboardInterrupt
                return real(path, *args, **kwargs)

            m.setattr(shutil, "rmtree", killed)
            with pytest.raises(KeyboardInterrupt):
                journal.discard()
        assert not journal.dir.exists()  # no block is left under the journal's own name
    with open_writer(store, tiny_llama):  # the next writer finishes the discard
        pass
    assert not (tmp_path / "run.h5.partial").exists()


# --- the undo log's name ------------------------------------------------------------------------
def test_the_undo_log_is_named_so_nobody_deletes_it():
    assert undo.undo_path(Path("run.h5")).name == "run.h5.undo-log-DO-NOT-DELETE"


def test_an_undo_log_of_the_old_name_is_still_rolled_back(tiny_store_template, tmp_path):
    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    old = store.read_bytes()
    with open(store, "r+b") as fh:  # a commit that had overwritten 16 bytes at 100
        fh.seek(100)
        saved = fh.read(16)
        fh.seek(100)
        fh.write(b"\xff" * 16)
        fh.seek(0, 2)
        fh.write(b"new bytes past the end")
    import struct
    import zlib

    record = struct.pack("<QQI", 100, 16, zlib.crc32(saved)) + saved
    (tmp_path / "run.h5.undo").write_bytes(undo.MAGIC + struct.pack("<Q", len(old)) + record)
    assert Store(store).probe_sets()  # a reader sees the old store
    with StoreWriter.for_existing(store):
        pass
    assert store.read_bytes() == old and not (tmp_path / "run.h5.undo").exists()


# --- paths: links, loops, empty names, outputs -------------------------------------------------------
def test_two_links_to_one_store_admit_one_writer(tiny_store_template, tmp_path):
    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    (tmp_path / "a.h5").symlink_to(store)
    (tmp_path / "b.h5").symlink_to(store)
    with StoreWriter.for_existing(tmp_path / "a.h5"):
        with pytest.raises(InputError, match="lock held"):
            StoreWriter.for_existing(tmp_path / "b.h5")


def test_a_commit_through_a_link_writes_the_target(tiny_store_template, tmp_path):
    from neuronoverlap.sets import NeuronSet

    store = tmp_path / "data" / "run.h5"
    store.parent.mkdir()
    shutil.copy(tiny_store_template, store)
    link = tmp_path / "link.h5"
    link.symlink_to(store)
    with StoreWriter.for_existing(link) as writer:
        writer.put_sets({"linked": NeuronSet(np.ones((4, 256), dtype=bool), "all")})
    assert link.is_symlink() and "linked" in Store(store).neuron_set_names()


def test_store_upgrade_through_a_link_keeps_the_link(tiny_store_template, tmp_path):
    """store-upgrade rewrites the file a link names (the link stays a link)."""
    from test_store_schema2 import as_schema_1

    store = tmp_path / "data" / "run.h5"
    store.parent.mkdir()
    shutil.copy(tiny_store_template, store)
    as_schema_1(store)
    link = tmp_path / "link.h5"
    link.symlink_to(store)
    assert main(["store-upgrade", str(link)]) == 0
    assert link.is_symlink() and link.resolve() == store.resolve()
    from neuronoverlap.store import schema

    with h5py.File(store, "r") as f:
        assert f.attrs["schema_version"] == schema.SCHEMA_VERSION


def test_store_upgrade_of_an_hdf5_file_that_is_no_store(tmp_path, refused):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["x"] = 1
    refused(["store-upgrade", tmp_path / "x.h5"], tmp_path, "not a neuronoverlap store")


class FakeRay:
    """What `_start_ray` asks of Ray: started already, with these free resources."""

    def __init__(self, free):
        self.free = free

    def is_initialized(self):
        return True

    def available_resources(self):
        return self.free


def test_ray_refuses_more_workers_than_free_cpus_at_once():
    from neuronoverlap.scale.ray_executor import _start_ray

    with pytest.raises(InputError, match="--workers 3 needs 3 CPUs, Ray has 2 free; use --workers 2"):
        _start_ray(FakeRay({"CPU": 2.0}), None, 3, 0)
    with pytest.raises(InputError, match="needs 2 GPUs, Ray has 1 free"):
        _start_ray(FakeRay({"CPU": 8.0, "GPU": 1.0}), None, 2, 1)
    _start_ray(FakeRay({"CPU": 2.0}), None, 2, 0)


def test_a_ray_address_that_answers_nothing_is_one_line():
    import socket

    from neuronoverlap.scale.ray_executor import _check_reachable

    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(InputError, match="no Ray cluster answers there"):
        _check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(InputError, match="HOST:PORT"):
        _check_reachable("nowhere")


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--store", ""], ["--store is empty"]),
        (["--store", "LOOP"], ["symlink loop"]),
        (["--template", "x {w"], ["malformed"]),
        (["--template", "x {S} {T}"], ["has no {w}"]),
        (["--template", "{S} {x} {w}"], ["may only use"]),
    ],
)
def test_bad_paths_and_templates_are_one_line(extra, expected, tmp_path, refused, no_model_load):
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    extra = [str(tmp_path / "loop1") if a == "LOOP" else a for a in extra]
    argv = ["probe", "--model", "tiny-llama", "--pair", "de-fr", *SMALL]
    if "--store" not in extra:
        extra += ["--store", str(tmp_path / "run.h5")]
    refused([*argv, *extra], tmp_path, *expected)


@pytest.mark.parametrize("what", ["store", "link", "shard", "other-hdf5"])
def test_no_output_path_writes_over_a_store_or_any_hdf5_file(what, tiny_store_template, tmp_path, refused):
    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    target = {"store": store, "link": tmp_path / "link.json", "shard": tmp_path / "run.shard-0-of-2.h5"}.get(
        what, tmp_path / "other.json"
    )
    if what == "link":
        target.symlink_to(store)
    elif what == "shard":
        shutil.copy(tiny_store_template, target)
    elif what == "other-hdf5":
        with h5py.File(target, "w") as f:
            f["x"] = 1
    argv = ["select-bridge", "--pair", "de-fr", "--bridges", "en", "--permutations", "0"]
    refused([*argv, "--window", "1-2", "--store", store, "--json", target], tmp_path, "--json", "overwritten")
    refused(["report", "--store", store, "--out", target], tmp_path, "--out")


def test_a_result_json_is_never_written_over_an_hdf5_file(tiny_store_template, tmp_path):
    from neuronoverlap.bridge.result import BridgeSelection

    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    selection = BridgeSelection.from_dict(Store(store).get_json("results", "bridge-de-fr"))
    before = store.read_bytes()
    with pytest.raises(InputError, match="overwritten"):
        selection.write_json(store)
    assert store.read_bytes() == before


def test_a_closed_stdout_is_one_line(tiny_store_template):
    command = [sys.executable, "-m", "neuronoverlap", "store-info", str(tiny_store_template)]
    done = subprocess.run(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        close_fds=True,
        preexec_fn=lambda: os.close(1),
    )
    assert done.returncode == 2 and "standard output is closed" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_reader_gone_early_is_quiet(tiny_store_template):
    command = (
        f"{sys.executable} -m neuronoverlap neuron {tiny_store_template} "
        + " ".join(f"{layer}:{n}" for layer in range(4) for n in range(40))
        + " | head -1"
    )
    done = subprocess.run(command, shell=True, capture_output=True, text=True)
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr, done.stderr
