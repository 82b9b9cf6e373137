"""Schema 2: exact integer fire counts, float16 means on request, and `store-upgrade` from 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.store import Store, checksums, counts
from neuronoverlap.store.verify import verify_store

MODEL = "tiny-llama"


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.lists(st.integers(0, 65535), min_size=1, max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_fire_counts_round_trip_exactly(tokens, seed):
    """float32(k / t), as the recorder computes it, gives back k exactly for every t < 2**16."""
    tokens = np.array(tokens, dtype=np.int32)
    rng = np.random.default_rng(seed)
    fires = rng.integers(0, np.maximum(tokens, 0) + 1, size=(7, 3, len(tokens))).transpose(2, 1, 0)
    prob = (fires.astype(np.float64) / np.maximum(tokens, 1)[:, None, None]).astype(np.float32)
    back = counts.fires_from_probability(prob, tokens, "test")
    assert back.dtype == np.uint16 and np.array_equal(back, fires)
    assert np.array_equal(counts.probability(back, tokens), prob)


def test_probabilities_that_are_not_counts_are_refused():
    tokens = np.array([7, 9])
    prob = np.full((2, 1, 3), 0.3, dtype=np.float32)  # 0.3 * 7 = 2.1 fires
    with pytest.raises(InputError, match="not exact fire counts"):
        counts.fires_from_probability(prob, tokens, "x")
    with pytest.raises(InputError, match="more than uint16"):
        counts.fires_from_probability(prob, np.array([70000, 1]), "x")


def test_a_new_store_keeps_fire_counts(tiny_store_template):
    with h5py.File(tiny_store_template, "r") as f:
        g = f[f"{MODEL}/probes/de-fr"]
        assert f.attrs["schema_version"] == 3 and "prob" not in g
        assert g["fires"].dtype == np.uint16 and g["fires"].fletcher32 and g["fires"].shuffle
        assert g["mean"].dtype == np.float32
        fires, tokens = g["fires"][()], g["tokens"][()]
    view = Store(tiny_store_template).probes("de", "fr")
    prob = view.array("probability")
    assert prob.dtype == np.float32 and (fires <= tokens[:, None, None]).all()
    assert np.array_equal(prob, (fires / tokens[:, None, None]).astype(np.float32))
    assert np.array_equal(view.layer(1, "probability"), prob[:, 1])
    assert np.array_equal(view.lazy("probability")[1:3, 2], prob[1:3, 2])
    assert np.array_equal(view.lazy("probability")[2], prob[2])
    np.testing.assert_allclose(view.pooled_probability(), fires.sum(0) / tokens.sum())


def as_schema_1(path: Path) -> None:
    """Rewrite `path` as the schema-1 writer stored it: float32 `prob`, schema_version 1."""
    with h5py.File(path, "r+") as f:
        for name in f[f"{MODEL}/probes"]:
            g = f[f"{MODEL}/probes/{name}"]
            fires, tokens = g["fires"], g["tokens"][()]
            prob = (fires[()] / np.maximum(tokens, 1)[:, None, None]).astype(np.float32)
            g.create_dataset(
                "prob",
                data=prob,
                chunks=fires.chunks,
                compression="gzip",
                compression_opts=1,
                fletcher32=True,
            )
            checksums.seal(g["prob"])
            del g["fires"]
        f.attrs["schema_version"] = 1
        checksums.seal(f)


def datasets(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def test_store_upgrade_from_schema_1(tiny_store_template, tmp_path, capsys):
    path = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, path)
    as_schema_1(path)
    old = Store(path)  # schema 1 stays readable, with the same values
    assert np.array_equal(
        old.probes("de", "fr").array("probability"),
        Store(tiny_store_template).probes("de", "fr").array("probability"),
    )
    before = path.read_bytes()
    assert main(["corpus", "--langs", "it", "-n", "2", "--store", str(path), "--quiet"]) == 2
    assert "store-upgrade" in capsys.readouterr().err and path.read_bytes() == before
    assert main(["store-upgrade", str(path)]) == 0
    assert "schema 1 -> 3 (6 probe sets converted" in capsys.readouterr().out
    expected, got = datasets(tiny_store_template), datasets(path)
    assert expected.keys() == got.keys()
    for key in expected:
        assert np.array_equal(np.asarray(expected[key]), np.asarray(got[key])), key
    report = verify_store(path)
    assert report.ok and report.no_checksum == []
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == 3 and f.attrs["upgraded_from_schema"] == 1
    assert main(["store-upgrade", str(path)]) == 0
    assert "already schema 3" in capsys.readouterr().out
    assert main(["corpus", "--langs", "it", "-n", "2", "--store", str(path), "--quiet"]) == 0


def test_store_upgrade_refuses_inexact_probabilities(tiny_store_template, tmp_path, capsys):
    path = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, path)
    as_schema_1(path)
    with h5py.File(path, "r+") as f:
        ds = f[f"{MODEL}/probes/fr-en/prob"]
        ds[0, 0, 0] = np.float32(0.123456)
    before = path.read_bytes()
    assert main(["store-upgrade", str(path)]) == 2
    err = capsys.readouterr().err
    assert "fr-en/prob: activation probabilities are not exact fire counts" in err
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]


def test_float16_means_on_request(tmp_path, capsys):
    """--mean-dtype float16 stores `mean` as float16: each value within float16's rounding
    (half a unit in the last place: 2**-11 relative, 2**-25 absolute below the normal range)
    of the float32 recording, and read back as float32."""
    argv = ["probe", "--model", MODEL, "--pair", "de-it", "-n", "6", "--max-new-tokens", "3", "--quiet"]
    assert main([*argv, "--store", str(tmp_path / "a.h5")]) == 0
    assert main([*argv, "--store", str(tmp_path / "b.h5"), "--mean-dtype", "float16"]) == 0
    full = Store(tmp_path / "a.h5").probes("de", "it")
    half = Store(tmp_path / "b.h5").probes("de", "it")
    m32, m16 = full.array("mean"), half.array("mean")
    assert m16.dtype == np.float32 and half.params["mean_dtype"] == "float16"
    with h5py.File(tmp_path / "b.h5", "r") as f:
        assert f[f"{MODEL}/probes/de-it/mean"].dtype == np.float16
    err = np.abs(m16.astype(np.float64) - m32)
    assert (err <= 2**-11 * np.abs(m32) + 2**-25).all() and err.max() > 0
    assert np.array_equal(half.array("probability"), full.array("probability"))
