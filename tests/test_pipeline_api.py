"""The pipeline as Python calls, and the command line's grammar over it: one call per step,
the store's vocabulary, no dead ends, a fast --help."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import neuronoverlap as no
from conftest import folder_snapshot
from neuronoverlap.cli import main
from neuronoverlap.errors import InputError
from neuronoverlap.options import BridgeOptions, ProbeOptions
from neuronoverlap.pipeline import (
    ModelSource,
    choose_bridge,
    ensure_pair_probes,
    missing_probe_pairs,
    pair_codes,
    record_probes,
)
from neuronoverlap.store import Store, schema

TINY = ProbeOptions(n_samples=4, max_new_tokens=3)
QUICK = BridgeOptions(n_random=20, n_bootstrap=20, window=(1, 2))


def test_importing_the_package_and_the_command_line_loads_no_torch():
    code = (
        "import sys, neuronoverlap, neuronoverlap.cli, neuronoverlap.options;"
        "from neuronoverlap.cli.main import build_parser; build_parser();"
        "heavy = [m for m in ('torch', 'transformers', 'transformer_lens', 'h5py', 'matplotlib') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_exports_the_nouns_a_notebook_needs():
    for name in ("load_model", "Store", "NeuronSet", "record_probes", "choose_bridge", "run_demo"):
        assert callable(getattr(no, name)) and name in dir(no)
    with pytest.raises(AttributeError, match="no attribute"):
        no.not_a_thing  # noqa: B018


def test_every_option_of_every_command_has_help():
    from neuronoverlap.cli.main import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    missing = []
    for name, sub in commands.items():
        parsers = [sub]
        if sub._subparsers is not None:  # evaluate bli / mrc
            parsers += list(sub._subparsers._group_actions[0].choices.values())
        for p in parsers:
            for action in p._actions:
                if not action.help and action.dest != "help":
                    missing.append(f"{name} {action.dest}")
    assert not missing, missing
    assert "store-info" in commands and "languages" in commands


def test_languages_command_lists_every_code(capsys):
    assert main(["languages"]) == 0
    out = capsys.readouterr().out
    for code in ("en", "zh", "sw", "tl"):
        assert f"\n{code} " in out


def test_pair_codes_one_rule():
    assert pair_codes("zh-ja", "en,de") == ("zh", "ja", ["en", "de"])
    assert pair_codes(("zh", "ja"), ["en"]) == ("zh", "ja", ["en"])
    with pytest.raises(InputError, match="cannot be the source"):
        pair_codes("zh-ja", ["ja"])
    assert schema.parse_probe_set_name("zh-ja") == ("zh", "ja")
    with pytest.raises(InputError, match="SRC-TGT"):
        schema.parse_probe_set_name("zh-ja-en")


def test_store_vocabulary_session_and_repr(tiny_store_template):
    with Store(tiny_store_template) as store:
        a = store.probes("de-fr")
        assert a.name == store.probes(("de", "fr")).name == store.probes("de", "fr").name == "de-fr"
        assert store.has_probes("de-fr") and store.has_probes("de", "fr") and not store.has_probes("de-zh")
        assert "test-set" in store.neuron_set_names() and len(store.neuron_set("test-set")) == 3
        assert "tiny-llama" in repr(store) and "probe sets" in repr(store)
        assert "de-fr" in repr(a) and "samples" in repr(a)
        assert "tokens" in repr(store.corpus("de"))
        handle = store._handle
        assert handle is not None and store.probes("fr-de").n_samples == 4 and store._handle is handle
    assert store._handle is None  # closed when the block ends


def test_record_then_choose_from_python(tmp_path):
    """model -> store -> bridge choice in three calls; the choice and its sets are kept."""
    path = tmp_path / "run.h5"
    model = no.load_model("tiny-llama")
    statuses = record_probes(path, [("de", "fr"), ("en", "de"), ("en", "fr")], model, TINY, progress=False)
    assert set(statuses.values()) == {"recorded"} and len(statuses) == 6
    assert missing_probe_pairs(path, "de", "fr", ["en"]) == []
    result = choose_bridge(path, "de-fr", ["en"], model, options=QUICK, probes=TINY, progress=False)
    assert result.chosen == "en"
    store = Store(path)
    assert schema.bridge_result_name("de", "fr") in store.group_names(schema.RESULTS)
    assert {schema.overlap_set_name("de", "fr"), schema.bridge_set_name("en", "de", "fr")} <= set(
        store.neuron_set_names()
    )
    assert store.neuron_set(schema.overlap_set_name("de", "fr")) == result.overlap
    # A second run records nothing (resumable), and a lock file is not left behind.
    assert record_probes(path, [("de", "fr")], model, TINY, progress=False) == {
        "de-fr": "already stored",
        "fr-de": "already stored",
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]


def test_a_store_without_the_data_needs_the_model_named(tmp_path, capsys):
    """A mistyped --store does not start hours of recording: it stops and says what to do."""
    missing = tmp_path / "typo.h5"
    with pytest.raises(InputError, match="pass --model"):
        ensure_pair_probes(missing, "de", "fr", ["en"], ModelSource(), TINY, progress=False)
    assert not missing.exists()
    assert (
        main(["select-bridge", "--pair", "de-fr", "--bridges", "en", "--store", str(missing), "--quiet"]) == 2
    )
    err = capsys.readouterr().err
    assert "no store at" in err and "pass --model" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_folder_as_store_is_an_error_for_every_command(tmp_path, capsys):
    for argv in (["store-info", "--store", str(tmp_path)], ["report", "--store", str(tmp_path)]):
        assert main(argv) == 2
        assert "is a folder" in capsys.readouterr().err


def test_the_store_is_an_option_everywhere(tiny_store_template, capsys):
    for argv in (["store-info", "--store"], ["store-info"], ["verify", "--store"]):
        assert main([*argv, str(tiny_store_template)]) == 0
    assert main(["neuron", "--store", str(tiny_store_template), "1:3", "--json"]) == 0
    assert '"layer": 1' in capsys.readouterr().out
    assert main(["store-info", str(tiny_store_template), "--store", "other.h5"]) == 2
    assert "two stores given" in capsys.readouterr().err


def test_evaluate_keeps_its_result_in_the_store_for_the_report(tiny_store_template, tmp_path, capsys):
    store = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, store)
    argv = [
        "evaluate",
        "bli",
        "--pair",
        "de-fr",
        "--bridge",
        "en",
        "-n",
        "3",
        "--max-new-tokens",
        "3",
        "--bootstrap",
        "50",
        "--quiet",
        "--store",
        str(store),
    ]
    assert main(argv) == 0
    assert "results/bli-de-fr" in capsys.readouterr().out
    kept = Store(store).get_json(schema.RESULTS, "bli-de-fr")
    assert kept["task"] == "bli" and kept["model"]["name"] == "tiny-llama"
    assert (
        main(
            ["report", "--store", str(store), "--out", str(tmp_path / "r"), "--quiet", "--permutations", "9"]
        )
        == 0
    )
    html = (tmp_path / "r" / "report.html").read_text()
    assert "bli-de-fr" in html or "BLI" in html
    before = folder_snapshot(tmp_path)
    assert main([*argv[:-1], str(tmp_path / "none.h5")]) == 2  # no store there: refused first
    assert "no store there" in capsys.readouterr().err and folder_snapshot(tmp_path) == before


def test_a_bridge_selection_reads_the_store_through_one_handle(tiny_store_template, monkeypatch):
    """select_bridge opened the HDF5 file 111 times on a tiny store; a read session keeps one."""
    from neuronoverlap.bridge import select_bridge
    from neuronoverlap.store import reader

    opened = []
    original = reader.open_h5

    def counting(path):
        opened.append(path)
        return original(path)

    monkeypatch.setattr(reader, "open_h5", counting)
    result = select_bridge(
        tiny_store_template, "de", "fr", ["en"], n_random=10, n_bootstrap=0, progress=False
    )
    assert result.chosen == "en"
    assert len(opened) <= 2, f"{len(opened)} opens"
