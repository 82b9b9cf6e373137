"""The command line: help, one-line errors with exit code 2, and real runs on a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from neuronoverlap.cli import main
from neuronoverlap.store import Store


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neuronoverlap", *args], capture_output=True, text=True, timeout=600
    )


def test_help_lists_commands():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in (
        "info",
        "probe",
        "corpus",
        "spectrum",
        "select-bridge",
        "evaluate",
        "report",
        "demo",
        "store-info",
        "neuron",
    ):
        assert command in out.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["probe", "--model", "tiny-llama", "--pair", "zh-xx"], "unknown language 'xx'"),
        (["probe", "--model", "tiny-llama", "--pair", "zh"], "written 'src-tgt'"),
        (
            ["probe", "--model", "tiny-llama", "--pair", "de-en", "--bridges", "en"],
            "cannot be the source",
        ),
        (["info", "--model", "no/such/model"], "nothing is downloaded"),
        (["store-info", "missing.h5"], "no store at"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_no_traceback_in_a_real_process(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    out = run_cli("store-info", str(bad))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "not a readable HDF5 store" in out.stderr


def test_probe_corpus_spectrum_on_tiny_model(tmp_path, capsys):
    store = tmp_path / "run.h5"
    assert (
        main(
            [
                "probe",
                "--model",
                "tiny-llama",
                "--pair",
                "de-fr",
                "--bridges",
                "en",
                "-n",
                "6",
                "--max-new-tokens",
                "4",
                "--store",
                str(store),
                "--quiet",
            ]
        )
        == 0
    )
    assert Store(store).probe_sets() == ["de-en", "de-fr", "en-de", "en-fr", "fr-de", "fr-en"]
    # rerunning is a no-op that reports what is stored
    assert (
        main(
            [
                "probe",
                "--model",
                "tiny-llama",
                "--pair",
                "de-fr",
                "-n",
                "6",
                "--max-new-tokens",
                "4",
                "--store",
                str(store),
                "--quiet",
            ]
        )
        == 0
    )
    assert "already stored" in capsys.readouterr().out
    out_dir = tmp_path / "spectrum"
    assert (
        main(
            [
                "spectrum",
                "--model",
                "tiny-llama",
                "--langs",
                "en,de,fr,he",
                "-n",
                "8",
                "--store",
                str(store),
                "--out",
                str(out_dir),
                "--permutations",
                "99",
                "--quiet",
            ]
        )
        == 0
    )
    assert Store(store).corpora() == ["de", "en", "fr", "he"]
    mantel = json.loads((out_dir / "mantel.json").read_text())
    assert 0 < mantel["mantel"]["pvalue"] <= 1 and (out_dir / "dendrogram.png").stat().st_size > 1000
    # a store written by one model refuses another
    assert (
        main(
            [
                "corpus",
                "--model",
                "tiny-mistral",
                "--langs",
                "en",
                "-n",
                "2",
                "--store",
                str(store),
                "--quiet",
            ]
        )
        == 2
    )
    assert "another model" in capsys.readouterr().err


def test_demo_end_to_end_on_tiny_model_and_resume(tmp_path, capsys):
    """The main job's pipeline on a tiny model: every stage runs, a rerun resumes."""
    args = [
        "demo",
        "--model",
        "tiny-llama",
        "--pair",
        "de-fr",
        "--bridges",
        "en,it",
        "-n",
        "6",
        "--corpus-n",
        "6",
        "--eval-n",
        "12",
        "--max-new-tokens",
        "3",
        "--permutations",
        "19",
        "--eval-bridges",
        "all",
        "--store",
        str(tmp_path / "demo.h5"),
        "--out",
        str(tmp_path / "out"),
        "--quiet",
    ]
    assert main(args) == 0
    first = capsys.readouterr().out
    for stage in range(1, 6):
        assert f"[{stage}/5]" in first
    store = Store(tmp_path / "demo.h5")
    assert len(store.probe_sets()) == 10 and store.corpora() == ["de", "en", "fr", "it"]
    assert store.group_names("results") == ["bli-de-fr", "bridge-de-fr"]
    assert "overlap-de-fr" in store.group_names("sets")
    bridge = json.loads((tmp_path / "out" / "bridge-de-fr.json").read_text())
    html = (tmp_path / "out" / "report" / "report.html").read_text()
    assert bridge["chosen"] in html and store.fingerprint in html
    bli = store.get_json("results", "bli-de-fr")
    assert set(bli["conditions"]) == {"zero-shot", "bridge:en", "bridge:it"}
    assert main(args) == 0  # rerun: resumes from the store
    second = capsys.readouterr().out
    assert "all 10 probe sets are in" in second and "recorded" not in second


def test_agnostic_share_is_one_option_on_every_analysis_command():
    from neuronoverlap.cli import options as opt
    from neuronoverlap.cli.main import build_parser

    parser = build_parser()
    commands = {
        "select-bridge": ["--pair", "zh-ja"],
        "demo": [],
        "report": [],
        "spectrum": [],
    }
    helps = set()
    for command, extra in commands.items():
        args = parser.parse_args([command, *extra, "--agnostic-share", "0.9"])
        assert args.agnostic_share == 0.9
        assert parser.parse_args([command, *extra]).agnostic_share is None
        sub = next(
            a
            for a in parser._subparsers._group_actions[0].choices[command]._actions
            if "--agnostic-share" in a.option_strings
        )
        helps.add(sub.help)
        if command in ("select-bridge", "demo"):
            assert opt.bridge_options(args).agnostic_share == 0.9
            assert opt.bridge_options(args).to_dict()["agnostic_share"] == 0.9
    assert len(helps) == 1


def test_a_missing_store_says_how_to_make_one(tmp_path, capsys):
    """Issue 30's first hour: `store-info` before the demo said only "no store at ..."."""
    assert main(["store-info", "--store", str(tmp_path / "demo.h5")]) == 2
    err = capsys.readouterr().err
    assert "no store at" in err and "neuronoverlap demo" in err and len(err.strip().splitlines()) == 1
