"""The work plan, `probe --shard i/n` and `merge`: shards recorded apart and merged equal the
single-process store, every dataset and every compressed chunk."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.scale.units import shard_path
from neuronoverlap.store import Store, schema
from neuronoverlap.store.merge import merge_shards
from neuronoverlap.store.plan import Plan, set_units
from neuronoverlap.store.verify import verify_store

MODEL = "tiny-llama"
N, BATCH = 150, 4
PROBE = ["probe", "--model", MODEL, "--pair", "de-es", "-n", str(N), "--batch-size", str(BATCH),
         "--max-new-tokens", "2", "--top-k", "3", "--quiet"]  # fmt: skip


@given(n=st.integers(1, 700), batch=st.integers(1, 40))
def test_units_are_batch_and_chunk_aligned(n, batch):
    units = set_units("a-b", n, batch)
    assert units[0].start == 0 and units[-1].stop == n
    assert all(u.stop == v.start for u, v in zip(units, units[1:], strict=False))
    chunk = min(schema.CHUNK_ROWS, n)
    for u in units:
        assert u.start % batch == 0 and u.start % chunk == 0  # the recorder's batches, whole chunks
        assert u.stop == n or (u.stop % batch == 0 and u.stop % chunk == 0)


def test_the_plan_is_a_pure_function_of_its_inputs():
    sets = {
        "de-es": {"n_samples": 150, "batch_size": 4, "seed": 0},
        "es-de": {"n_samples": 10, "batch_size": 4},
    }
    plan = Plan.of(sets)
    assert plan.plan_id == Plan.of(dict(sets)).plan_id == Plan.from_json(plan.to_json()).plan_id
    assert [u.rows for u in plan.units] == [(0, 64), (64, 128), (128, 150), (0, 10)]
    assert plan.plan_id != Plan.of({**sets, "de-es": {**sets["de-es"], "seed": 1}}).plan_id
    shards = [plan.shard(i, 3) for i in range(3)]
    assert sorted(u for s in shards for u in s) == sorted(plan.units)


def chunks(path: Path, under: str = "/") -> dict[str, object]:
    """Every dataset's values (of group `under`), and the raw (compressed) bytes of every chunk
    of chunked ones."""
    out = {}

    def add(name, obj):
        if not isinstance(obj, h5py.Dataset) or name == schema.PLAN:
            return
        data = obj[()]
        if isinstance(data, bytes):  # a scalar string (a JSON result)
            out[name] = data
            return
        out[name] = repr(data.tolist()) if data.dtype.kind == "O" else data.tobytes()
        if obj.chunks is not None:
            for i in range(obj.id.get_num_chunks()):
                info = obj.id.get_chunk_info(i)
                out[f"{name}@{info.chunk_offset}"] = obj.id.read_direct_chunk(info.chunk_offset)

    with h5py.File(path, "r") as f:
        f[under].visititems(add)
    return out


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, tiny_llama, tiny_mistral):  # both loaded before the patch
    import neuronoverlap.models as models

    real = models.load_model
    models.load_model = lambda *a, **k: tiny_llama
    try:
        folder = tmp_path_factory.mktemp("shards")
        single = folder / "single.h5"
        assert main([*PROBE, "--store", str(single)]) == 0
        store = folder / "run.h5"
        for i in range(3):
            assert main([*PROBE, "--store", str(store), "--shard", f"{i}/3"]) == 0
        yield folder, single, [shard_path(store, i, 3) for i in range(3)]
    finally:
        models.load_model = real


def test_sharded_and_merged_equals_single(recorded, capsys):
    folder, single, shards = recorded
    assert [p.name for p in shards] == [f"run.shard-{i}-of-3.h5" for i in range(3)]
    with pytest.raises(InputError, match="is a shard: it holds samples"):
        Store(shards[0]).probes("de", "es")
    assert main(["merge", str(folder / "merged.h5"), *map(str, shards)]) == 0
    assert "6 units of 2 probe sets" in capsys.readouterr().out
    expected, got = chunks(single), chunks(folder / "merged.h5")
    assert expected.keys() == got.keys() and len([k for k in got if "@" in k]) >= 2 * 2 * 3 * 4
    for key in expected:
        assert got[key] == expected[key], key
    assert any("/contexts/value@" in key for key in got)  # top-ks merged exactly, chunk for chunk
    assert verify_store(folder / "merged.h5").ok
    view = Store(folder / "merged.h5").probes("es", "de")
    assert np.array_equal(view.array("probability"), Store(single).probes("es", "de").array("probability"))


def test_merge_refusals(recorded, tmp_path, tiny_mistral, monkeypatch, capsys):
    folder, _, shards = recorded
    out = tmp_path / "m.h5"
    with pytest.raises(InputError, match="2 of 6 units are in no shard given"):
        merge_shards(out, shards[:2])
    with pytest.raises(InputError, match="is in .* and"):
        merge_shards(out, [*shards, shards[0]])
    # Another plan: the same command with another seed.
    other = tmp_path / "other.h5"
    assert main([*PROBE, "--seed", "5", "--store", str(other), "--shard", "1/3"]) == 0
    with pytest.raises(InputError, match="shards of different work plans"):
        merge_shards(out, [shards[0], shard_path(other, 1, 3), shards[2]])
    # Another model.
    import neuronoverlap.models as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: tiny_mistral)
    mistral = tmp_path / "mistral.h5"
    argv = [a if a != MODEL else "tiny-mistral" for a in PROBE]
    assert main([*argv, "--store", str(mistral), "--shard", "1/3"]) == 0
    capsys.readouterr()
    assert main(["merge", str(out), str(shards[0]), str(shard_path(mistral, 1, 3)), str(shards[2])]) == 2
    err = capsys.readouterr().err.strip()
    assert "shards of different models" in err and "\n" not in err
    assert not out.exists()
    shutil.copy(shards[0], tmp_path / "exists.h5")
    with pytest.raises(InputError, match="exists; merge writes a new store"):
        merge_shards(tmp_path / "exists.h5", shards)


def test_verify_checks_a_shard_list_and_a_merged_store_against_its_plan(recorded, tmp_path, capsys):
    folder, _, shards = recorded
    capsys.readouterr()
    assert main(["verify", "--shards", *map(str, shards)]) == 0
    assert "3 shards hold all 6 units of work plan" in capsys.readouterr().out
    assert main(["verify", "--shards", *map(str, shards[1:])]) == 2
    assert "units are in no shard given" in capsys.readouterr().err
    merged = tmp_path / "merged.h5"
    merge_shards(merged, shards)
    assert verify_store(merged).ok
    with h5py.File(merged, "r+") as f:
        del f[f"{MODEL}/probes/es-de"]
    assert verify_store(merged).damaged == {f"/{MODEL}/probes/es-de": "in the work plan but not in the store"}


def test_a_linked_view_reads_the_shards_and_refuses_missing_or_changed_ones(recorded, tmp_path, capsys):
    folder, single, shards = recorded
    copies = []
    for shard in shards:  # the view's shards, beside it
        copies.append(tmp_path / shard.name)
        shutil.copy(shard, copies[-1])
    view = tmp_path / "view.h5"
    capsys.readouterr()
    assert main(["merge", "--link", str(view), *map(str, copies)]) == 0
    assert "linked (a view)" in capsys.readouterr().out
    assert view.stat().st_size < sum(p.stat().st_size for p in copies) / 3  # no chunk copied
    with h5py.File(view, "r") as f:
        assert f[f"{MODEL}/probes/de-es/mean"].is_virtual
    for src, tgt in (("de", "es"), ("es", "de")):
        for stat in ("mean", "probability"):
            expected = Store(single).probes(src, tgt).array(stat)
            assert np.array_equal(Store(view).probes(src, tgt).array(stat), expected), (src, tgt, stat)
    assert verify_store(view).ok
    # A shard changed: refused (plain HDF5 would read the view as it is now).
    backup = copies[1].read_bytes()
    with h5py.File(copies[1], "r+") as f:
        f.attrs["note"] = "changed"
    with pytest.raises(InputError, match="has changed since the view was made"):
        Store(view)
    copies[1].write_bytes(backup)
    assert Store(view).probe_sets() == ["de-es", "es-de"]
    # A shard missing: refused (HDF5 would read its rows as zeros, silently).
    copies[2].unlink()
    with h5py.File(view, "r") as f:
        assert not f[f"{MODEL}/probes/de-es/fires"][128:150].any()  # what plain h5py reads
    with pytest.raises(InputError, match="which is missing"):
        Store(view)
    assert main(["neuron", str(view), "1:3"]) == 2
    assert "which is missing" in capsys.readouterr().err


def test_select_bridge_on_a_view_of_shards(tmp_path, tiny_llama, monkeypatch, capsys):
    import neuronoverlap.models as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: tiny_llama)
    store = tmp_path / "run.h5"
    argv = [
        "probe",
        "--model",
        MODEL,
        "--pair",
        "de-fr",
        "--bridges",
        "en",
        "-n",
        "4",
        "--max-new-tokens",
        "3",
    ]
    for i in range(2):
        assert main([*argv, "--store", str(store), "--shard", f"{i}/2", "--quiet"]) == 0
    view = tmp_path / "view.h5"
    assert main(["merge", "--link", str(view), *(str(shard_path(store, i, 2)) for i in range(2))]) == 0
    capsys.readouterr()
    bridge = ["select-bridge", "--pair", "de-fr", "--bridges", "en", "--permutations", "5", "--window", "1-2"]
    assert main([*bridge, "--store", str(view), "--quiet"]) == 0
    assert "chosen bridge: en" in capsys.readouterr().out
    assert Store(view).get_json("results", "bridge-de-fr")["chosen"] == "en"
    assert verify_store(view).ok


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--shard", "3/2"], "--shard 3/2: INDEX counts from 0 to COUNT-1"),
        (["--shard", "two"], "give INDEX/COUNT"),
        (["--shard", "0/2", "--executor", "ray"], "does not go with --executor ray"),
    ],
)
def test_bad_shard_options_are_one_line(extra, expected, tmp_path, no_model_load, capsys):
    argv = ["probe", "--model", MODEL, "--pair", "de-es", "-n", "4", "--store", str(tmp_path / "run.h5")]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []
