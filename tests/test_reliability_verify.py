"""`verify` finds what is damaged and never crashes; `merge` refuses a damaged shard; a single
shard used as a store says so; store-upgrade of a non-store (issue 32, classes 2, 3, 5, 6)."""

from __future__ import annotations

import json
import random
import shutil

import h5py
import numpy as np
import pytest

from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.store.verify import verify_store

SHARD_ARGV = ["probe", "--model", "tiny-llama", "--pair", "de-fr", "-n", "4", "--batch-size", "2"]
SHARD_ARGV += ["--max-new-tokens", "2", "--quiet"]


def _contents(path) -> dict:
    """Everything plain h5py reads of a file: every attribute and every dataset's values."""
    out = {}

    def add(name, obj):
        out[name + "@attrs"] = {k: repr(obj.attrs[k]) for k in obj.attrs}
        if isinstance(obj, h5py.Dataset):
            out[name] = repr(np.asarray(obj[()]).tolist())

    with h5py.File(path, "r") as f:
        out["/@attrs"] = {k: repr(f.attrs[k]) for k in f.attrs}
        f.visititems(add)
    return out


def test_verify_finds_every_flip_that_changes_what_is_read(tiny_store_template, tmp_path):
    """One flipped bit at 150 seeded places of a store: verify never raises anything but the
    one-line InputError, and whenever plain h5py would read something else (or fail), it says the
    store is damaged."""
    original = _contents(tiny_store_template)
    data = tiny_store_template.read_bytes()
    rng = random.Random(32)
    work = tmp_path / "run.h5"
    missed, changed_count = [], 0
    for _ in range(150):
        position = rng.randrange(len(data))
        flipped = bytearray(data)
        flipped[position] ^= 1 << rng.randrange(8)
        work.write_bytes(bytes(flipped))
        try:
            changed = _contents(work) != original
        except Exception:
            changed = True
        changed_count += changed
        try:
            ok = verify_store(work).ok
        except InputError:
            ok = False
        if changed and ok:
            missed.append(position)
    assert changed_count > 10  # the sample does reach data and metadata
    assert missed == [], f"verify passed flips at {missed}"


@pytest.mark.parametrize("what", ["string", "attribute"])
def test_verify_names_a_damaged_string_or_attribute(what, tiny_store_template, tmp_path, capsys):
    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    with h5py.File(store, "r+") as f:  # a change h5py itself cannot notice: only sha256 can
        g = f["tiny-llama/probes/de-fr"]
        if what == "string":
            words = g["source_words"][()]
            words[1] = b"Xaver"
            g["source_words"][...] = words
        else:
            g.attrs["seed"] = 7
    capsys.readouterr()
    assert main(["verify", str(store)]) == 2
    out = capsys.readouterr()
    assert "damaged" in out.out and "/tiny-llama/probes/de-fr" in out.out
    assert len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err


def test_verify_refuses_a_file_that_is_not_a_store(tmp_path, refused):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["x"] = np.arange(3)
    refused(["verify", tmp_path / "x.h5"], tmp_path, "not a neuronoverlap store")


def test_verify_refuses_an_unknown_schema_version(tiny_store_template, tmp_path, refused):
    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    with h5py.File(store, "r+") as f:
        f.attrs["schema_version"] = 99
    refused(["verify", store], tmp_path, "schema 99")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    for index in (0, 1):
        assert main([*SHARD_ARGV, "--shard", f"{index}/2", "--store", str(folder / "run.h5")]) == 0
    return [folder / f"run.shard-{index}-of-2.h5" for index in (0, 1)]


def _copies(shards, folder):
    out = []
    for shard in shards:
        shutil.copy(shard, folder / shard.name)
        out.append(folder / shard.name)
    return out


def test_verify_of_a_view_whose_shard_moved_or_changed(shards, tmp_path, capsys):
    copies = _copies(shards, tmp_path)
    view = tmp_path / "view.h5"
    assert main(["merge", "--link", str(view), *map(str, copies)]) == 0
    assert main(["verify", str(view)]) == 0
    copies[1].rename(tmp_path / "moved.h5")
    capsys.readouterr()
    assert main(["verify", str(view)]) == 2
    assert "missing" in capsys.readouterr().out
    (tmp_path / "moved.h5").rename(copies[1])
    with h5py.File(copies[1], "r+") as f:  # changed since the view was made
        f.attrs["modified"] = "later"
    assert main(["verify", str(view)]) == 2
    assert "has changed" in capsys.readouterr().out


def _flip_in_a_mean_chunk(shard) -> None:
    with h5py.File(shard, "r") as f:
        ds = f["tiny-llama/probes/de-fr/mean"]
        info = ds.id.get_chunk_info(0)
    with open(shard, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes([byte[0] ^ 0x10]))


def test_merge_refuses_a_shard_with_a_damaged_chunk(shards, tmp_path, refused):
    copies = _copies(shards, tmp_path)
    _flip_in_a_mean_chunk(copies[0])
    for link in ([], ["--link"]):
        refused(["merge", *link, tmp_path / "merged.h5", *copies], tmp_path, f"shard {copies[0]} is damaged")


def test_merge_refuses_a_shard_whose_plan_is_not_json(shards, tmp_path, refused):
    copies = _copies(shards, tmp_path)
    with h5py.File(copies[1], "r+") as f:
        del f["plan"]
        f.create_dataset("plan", data="{not json", dtype=h5py.string_dtype())
    refused(
        ["merge", tmp_path / "merged.h5", *copies], tmp_path, f"shard {copies[1]}", "work plan is damaged"
    )


def test_a_single_shard_says_so(shards, tmp_path, capsys):
    shard = _copies(shards, tmp_path)[0]
    capsys.readouterr()
    assert main(["neuron", str(shard), "1:3"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is shard 0 of 2 of a work plan" in err[0] and "only de-fr[0:4];" in err[0], err
    assert main(["report", "--store", str(shard), "--out", str(tmp_path / "report"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "is shard 0 of 2" in err and "only de-fr[0:4];" in err, err
    argv = ["select-bridge", "--pair", "de-fr", "--bridges", "en", "--store", str(shard)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a whole store" in err[0], err


def test_a_store_json_is_not_a_shard(tiny_store_template, capsys):
    capsys.readouterr()
    assert main(["neuron", str(tiny_store_template), "1:3"]) == 0
    assert "shard" not in capsys.readouterr().err


def test_plan_json_damage_is_an_input_error():
    from neuronoverlap.store.plan import Plan

    for text in ("{not json", "[]", json.dumps({"sets": {}})):
        with pytest.raises(InputError, match="work plan is damaged"):
            Plan.from_json(text)
