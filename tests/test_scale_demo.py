"""The demo and `select-bridge` on stores recorded as shards: merged (chunks copied) and as a
`merge --link` view, they give the selection, the results and the report tables of the store
the single-process demo records itself."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from neuronoverlap.bridge.loader import probe_pairs
from neuronoverlap.cli import main
from neuronoverlap.options import BridgeOptions, CorpusOptions, ProbeOptions
from neuronoverlap.pipeline import record_probe_shard, record_probes, run_demo
from neuronoverlap.scale.units import shard_path
from neuronoverlap.store import Store
from neuronoverlap.store.merge import merge_shards
from neuronoverlap.store.verify import verify_store

PAIR, BRIDGES = ("de", "fr"), ["en"]
# 70 samples: two units per probe set ([0:64], [64:70]), so a probe set spans both shards.
PROBES = ProbeOptions(n_samples=70, max_new_tokens=2, batch_size=8)
CORPORA = CorpusOptions(n_sentences=4)
SELECTION = BridgeOptions(n_random=20, n_bootstrap=20, n_permutations=5, window=(1, 2))
SELECT = ["select-bridge", "--pair", "de-fr", "--bridges", "en", "--permutations", "5", "--window", "1-2"]


def _demo(store, out, model):
    return run_demo(
        PAIR,
        BRIDGES,
        store,
        out,
        model,
        PROBES,
        CORPORA,
        SELECTION,
        eval_n=6,
        progress=False,
        say=lambda s: None,
    )


def _result(path, name: str) -> dict:
    """A stored result but the path of its store and its timings."""
    return _without_store(Store(path).get_json("results", name))


def _without_store(doc):
    if isinstance(doc, dict):
        return {k: _without_store(v) for k, v in doc.items() if k not in ("store", "seconds")}
    return [_without_store(v) for v in doc] if isinstance(doc, list) else doc


VARYING = ("store,", "seconds,")


def _tables(folder) -> dict[str, str]:
    """The report's tables but provenance (which names the store file and its dates)."""
    return {
        p.name: "".join(line for line in p.read_text().splitlines(True) if not line.startswith(VARYING))
        for p in sorted((folder / "tables").glob("*.csv"))
        if p.name != "provenance.csv"
    }


@pytest.fixture(scope="module")
def stores(tmp_path_factory, tiny_llama):
    """The demo's probe sets recorded in-process, the demo run on a copy of that store, and the
    probe sets recorded as 2 shards, merged both ways."""
    folder = tmp_path_factory.mktemp("demo")
    single, pairs = folder / "single.h5", probe_pairs(*PAIR, BRIDGES)
    record_probes(single, pairs, tiny_llama, PROBES, progress=False)
    shutil.copy(single, folder / "demo.h5")
    demo = _demo(folder / "demo.h5", folder / "out-single", tiny_llama)
    for i in range(2):
        units = record_probe_shard(folder / "run.h5", pairs, f"{i}/2", tiny_llama, PROBES, progress=False)
        assert {u.name for u in units} == {f"{a}-{b}" for pair in pairs for a, b in (pair, pair[::-1])}
    shards = [shard_path(folder / "run.h5", i, 2) for i in range(2)]
    merge_shards(folder / "merged.h5", shards)
    merge_shards(folder / "view.h5", shards, link=True)
    return folder, single, demo


@pytest.mark.parametrize("kind", ["merged", "view"])
def test_select_bridge_report_and_demo_on_merged_shards_equal_single(stores, kind, tiny_llama, capsys):
    from test_store_shards import chunks

    folder, single, demo = stores
    path = folder / f"{kind}.h5"
    probes = Store(single).probe_sets()
    assert Store(path).probe_sets() == probes and len(probes) == 6
    if kind == "merged":  # byte for byte the demo's probe sets
        assert chunks(path, "tiny-llama/probes") == chunks(single, "tiny-llama/probes")
    for name in probes:
        a, b = Store(single).probes(*name.split("-")), Store(path).probes(*name.split("-"))
        assert np.array_equal(a.array("probability"), b.array("probability")) and np.array_equal(
            a.array("mean"), b.array("mean")
        )

    # select-bridge and report on the shards' store, then on the single one (its demo result kept)
    capsys.readouterr()
    assert main([*SELECT, "--store", str(path), "--quiet"]) == 0
    assert main(["report", "--store", str(path), "--out", str(folder / f"report-{kind}"), "--quiet"]) == 0
    lines = capsys.readouterr().out
    copy = folder / f"single-{kind}.h5"
    shutil.copy(single, copy)
    assert main([*SELECT, "--store", str(copy), "--quiet"]) == 0
    assert (
        main(["report", "--store", str(copy), "--out", str(folder / f"report-single-{kind}"), "--quiet"]) == 0
    )
    assert "chosen bridge: en" in lines
    assert _result(path, "bridge-de-fr") == _result(copy, "bridge-de-fr")
    tables = _tables(folder / f"report-{kind}")
    assert tables and tables == _tables(folder / f"report-single-{kind}")

    # the demo's remaining stages (FLORES statistics, selection, BLI, report) on it
    result = _demo(path, folder / f"out-{kind}", tiny_llama)
    assert _without_store(result.selection.to_dict()) == _without_store(demo.selection.to_dict())
    assert _without_store(result.bli.summary()) == _without_store(demo.bli.summary())
    assert str(result.verdict) == str(demo.verdict)
    for name in ("bridge-de-fr", "bli-de-fr"):
        assert _result(path, name) == _result(folder / "demo.h5", name), name
    assert Store(path).corpora() == Store(folder / "demo.h5").corpora() == ["de", "en", "fr"]
    assert _tables(folder / f"out-{kind}" / "report") == _tables(folder / "out-single" / "report")
    saved = json.loads((folder / f"out-{kind}" / "bridge-de-fr.json").read_text())
    assert _without_store(saved) == _without_store(
        json.loads((folder / "out-single" / "bridge-de-fr.json").read_text())
    )
    assert verify_store(path).ok
