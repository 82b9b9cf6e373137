"""Damage outside fletcher32's reach (a string, a scalar, a JSON result, an attribute, a neuron
set) is caught by the sha256 checksums: reading it is a one-line error naming the object,
`neuronoverlap verify` lists every damaged object and exits 2, commands that need it exit 2.
Stores written before checksums stay readable ("no checksum")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.store import Store, checksums
from neuronoverlap.store.verify import verify_store

MODEL = "tiny-llama"


def flipped(path: Path, offset: int, out: Path, mask: int = 0x01) -> Path:
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    out.write_bytes(bytes(data))
    return out


def silent_damage(path: Path, needle: bytes, raw_read, out: Path, shift: int = 0) -> Path:
    """A copy of the store with one byte of `needle` flipped where plain h5py then reads a
    different value through `raw_read(h5py.File)` without any error (the damage fletcher32
    misses); the first occurrence of `needle` that does that."""
    data = path.read_bytes()
    with h5py.File(path, "r") as f:
        original = raw_read(f)
    start = data.find(needle)
    while start >= 0:
        flipped(path, start + shift, out)
        try:
            with h5py.File(out, "r") as f:
                if raw_read(f) != original:
                    return out
        except (OSError, ValueError, UnicodeDecodeError):
            pass
        start = data.find(needle, start + 1)
    raise AssertionError(f"no occurrence of {needle!r} changes what h5py reads")


@pytest.fixture
def store(tiny_store_template, tmp_path) -> Path:
    path = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, path)
    return path


def cli(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_exit_2(capsys, *argv, expected: str) -> None:
    code, _, err = cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert expected in lines[0], lines[0]


def test_a_clean_store_verifies(store, capsys):
    code, out, err = cli(capsys, "verify", store)
    assert code == 0 and err == "" and "0 damaged, 0 without a checksum" in out
    report = verify_store(store)
    with h5py.File(store, "r") as f:
        names = ["/"]
        f.visit(lambda name: names.append("/" + name))
    assert sorted(report.checked) == sorted(names)  # every group and dataset
    code, out, _ = cli(capsys, "verify", "--store", store)
    assert code == 0


def test_a_damaged_source_word(store, tmp_path, capsys):
    key = f"{MODEL}/probes/de-fr/source_words"
    with h5py.File(store, "r") as f:
        word = f[key][0]
    damaged = silent_damage(store, word, lambda f: list(f[key][:]), tmp_path / "word.h5", shift=1)
    with h5py.File(damaged, "r") as f:
        assert f[key][0] != word  # plain h5py reads another word, silently
    with pytest.raises(InputError, match=f"/{key} is damaged"):
        Store(damaged).probes("de", "fr").strings("source_words")
    assert Store(damaged).probes("de", "fr").layer(1).shape == (4, 256)  # the rest reads fine
    assert_one_line_exit_2(capsys, "verify", damaged, expected="source_words")
    assert_one_line_exit_2(
        capsys,
        "report",
        "--store",
        damaged,
        "--out",
        tmp_path / "out",
        "--quiet",
        expected="source_words is damaged",
    )


def test_a_damaged_scalar(store, tmp_path, capsys):
    key = f"{MODEL}/corpora/en/n_tokens"
    with h5py.File(store, "r") as f:
        offset, value = f[key].id.get_offset(), int(f[key][()])
    damaged = flipped(store, offset, tmp_path / "scalar.h5")
    with h5py.File(damaged, "r") as f:
        assert int(f[key][()]) == value ^ 1  # read silently as another count
    with pytest.raises(InputError, match="n_tokens is damaged"):
        _ = Store(damaged).corpus("en").n_tokens
    assert_one_line_exit_2(capsys, "store-info", damaged, expected="n_tokens is damaged")
    assert_one_line_exit_2(capsys, "neuron", damaged, "1:3", expected="n_tokens is damaged")
    assert_one_line_exit_2(capsys, "verify", damaged, expected="/" + key)


def test_a_damaged_json_result(store, tmp_path, capsys):
    key = f"{MODEL}/results/bridge-de-fr"
    damaged = silent_damage(store, b'"chosen": "en"', lambda f: f[key][()], tmp_path / "json.h5", shift=11)
    with h5py.File(damaged, "r") as f:
        assert json.loads(f[key][()])["chosen"] != "en"
    with pytest.raises(InputError, match="bridge-de-fr is damaged"):
        Store(damaged).get_json("results", "bridge-de-fr")
    assert_one_line_exit_2(
        capsys, "report", "--store", damaged, "--out", tmp_path / "out", "--quiet", expected="bridge-de-fr"
    )


def test_a_damaged_attribute(store, tmp_path, capsys):
    group = f"{MODEL}/probes/en-fr"
    damaged = silent_damage(
        store, b'"template": ', lambda f: f[group].attrs["params"], tmp_path / "attr.h5", shift=2
    )
    with pytest.raises(InputError, match="en-fr is damaged"):
        _ = Store(damaged).probes("en", "fr").params
    report = verify_store(damaged)
    assert list(report.damaged) == ["/" + group]


def test_a_damaged_neuron_set(store, tmp_path, capsys):
    key = f"{MODEL}/sets/test-set"
    with h5py.File(store, "r") as f:
        offset = f[key].id.get_offset()
    damaged = flipped(store, offset + 4, tmp_path / "set.h5")
    with pytest.raises(InputError, match="test-set is damaged"):
        Store(damaged).neuron_set("test-set")
    assert_one_line_exit_2(capsys, "neuron", damaged, "1:3", expected="test-set is damaged")


def test_a_damaged_mean_chunk_stops_the_report(store, tmp_path, capsys):
    key = f"{MODEL}/probes/de-fr/mean"
    with h5py.File(store, "r") as f:
        offset = f[key].id.get_chunk_info(0).byte_offset
    damaged = flipped(store, offset + 30, tmp_path / "mean.h5", mask=0xFF)
    assert_one_line_exit_2(
        capsys,
        "report",
        "--store",
        damaged,
        "--out",
        tmp_path / "out",
        "--quiet",
        expected="probes/de-fr/mean is damaged",
    )
    assert not (tmp_path / "out" / "report.html").exists()


def test_verify_lists_every_damaged_object(store, tmp_path, capsys):
    with h5py.File(store, "r") as f:
        first = f[f"{MODEL}/corpora/en/n_tokens"].id.get_offset()
        second = f[f"{MODEL}/corpora/de/n_sentences"].id.get_offset()
        chunk = f[f"{MODEL}/probes/fr-en/fires"].id.get_chunk_info(0).byte_offset
    damaged = flipped(flipped(store, first, tmp_path / "a.h5"), second, tmp_path / "b.h5")
    damaged = flipped(damaged, chunk + 30, tmp_path / "c.h5", mask=0xFF)
    code, out, err = cli(capsys, "verify", damaged)
    assert code == 2 and len(err.strip().splitlines()) == 1
    names = [line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("damaged")]
    assert sorted(names) == sorted(
        f"/{MODEL}/{k}" for k in ("corpora/en/n_tokens", "corpora/de/n_sentences", "probes/fr-en/fires")
    )
    assert "3 damaged" in err


def strip_checksums(path: Path) -> None:
    """Make `path` a store as written before checksums."""
    with h5py.File(path, "r+") as f:
        objects = [f]
        f.visititems(lambda name, obj: objects.append(obj))
        for obj in objects:
            if checksums.ATTR in obj.attrs:
                del obj.attrs[checksums.ATTR]


def test_old_stores_without_checksums_stay_readable(store, tmp_path, capsys, tiny_llama):
    strip_checksums(store)
    view = Store(store).probes("de", "fr")
    assert len(view.strings("source_words")) == 4 and Store(store).corpus("en").n_tokens > 0
    assert Store(store).neuron_set("test-set").n_layers == 4
    code, out, err = cli(capsys, "verify", store)
    assert code == 0 and err == ""
    assert f"no checksum  /{MODEL}/probes/de-fr/source_words" in out.splitlines()
    # Written into, the old store keeps its old objects unchecked and seals the new ones only.
    from neuronoverlap.probes import open_writer

    with open_writer(store, tiny_llama) as writer:
        writer.put_json("results", "note", {"a": 1})
    report = verify_store(store)
    assert report.ok and f"/{MODEL}/results/note" not in report.no_checksum
    assert f"/{MODEL}/probes/de-fr/source_words" in report.no_checksum
    assert "/" not in report.no_checksum  # the root attributes are sealed at every commit


def test_damaged_root_attributes_are_refused(store, tiny_llama):
    with h5py.File(store, "r+") as f:
        f.attrs["d_mlp"] = 256  # same value: the attribute rewritten, the checksum still right
        f.attrs["activation_definition"] = "something else"  # changed behind the checksum
    with pytest.raises(InputError, match="damaged"):
        Store(store)


@pytest.mark.parametrize(
    "damaged_file", ["block-000000000.npz", "params.json", "model.json", "block without mean"]
)
def test_a_damaged_journal_file_is_named(damaged_file, tmp_path, capsys, monkeypatch):
    """A journal file damaged by hand (the writer never leaves one half-written): one line that
    names it; deleting it and rerunning recomputes what it held."""
    from neuronoverlap.store.writer import StoreWriter

    store = tmp_path / "run.h5"
    argv = [
        "probe",
        "--model",
        MODEL,
        "--pair",
        "de-it",
        "-n",
        "4",
        "--batch-size",
        "2",
        "--max-new-tokens",
        "2",
        "--store",
        store,
        "--quiet",
    ]
    assert cli(capsys, *argv)[0] == 0
    reference = Store(store).probes("de", "it").array("mean")
    store.unlink()
    with monkeypatch.context() as patch:  # interrupted before the merge: both blocks journaled

        def interrupted(*args):
            raise KeyboardInterrupt

        patch.setattr(StoreWriter, "finish_probe_set", interrupted)
        assert cli(capsys, *argv)[0] == 130
    journal = tmp_path / "run.h5.partial"
    folder = journal / "probes" / "de-it"
    assert len(list(folder.glob("block-*.npz"))) == 2
    if damaged_file == "block without mean":  # a readable block that lost an array
        path = folder / "block-000000002.npz"
        with np.load(path) as data:
            kept = {k: data[k] for k in data.files if k != "mean"}
        np.savez(path, **kept)
    else:
        path = journal / damaged_file if damaged_file == "model.json" else folder / damaged_file
        path.write_bytes(b"{damaged" if damaged_file.endswith(".json") else b"PK\x03\x04 damaged")
    assert_one_line_exit_2(capsys, *argv, expected=f"journal file {path} is damaged")
    path.unlink()
    if damaged_file == "params.json":  # its blocks go with it
        shutil.rmtree(folder)
    assert cli(capsys, *argv)[0] == 0
    assert (Store(store).probes("de", "it").array("mean") == reference).all()
