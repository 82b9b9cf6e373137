"""Bad command lines and refused stores: exit code 2, one line on stderr naming the option or
file, no traceback, no model loaded, and every file beside the store as it was (no lock, no
journal left on a path that had no store)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import h5py
import pytest

from conftest import CHECKOUT, folder_snapshot
from neuronoverlap.store import Store

TINY = ["--model", "tiny-llama"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["probe", *TINY, "--pair", "de-fr", "--max-new-tokens", "0"], ["--max-new-tokens", "got 0"]),
        (["probe", *TINY, "--pair", "de-fr", "--max-new-tokens", "-1"], ["--max-new-tokens"]),
        (["probe", *TINY, "--pair", "de-fr", "--seed", "-1"], ["--seed", "-1"]),
        (["select-bridge", *TINY, "--pair", "de-fr", "--seed", "-1"], ["--seed"]),
        (["select-bridge", *TINY, "--pair", "de-fr", "--random-sets", "0"], ["--random-sets", "got 0"]),
        (["select-bridge", *TINY, "--pair", "de-fr", "--bootstrap", "-1"], ["--bootstrap", "got -1"]),
        (["select-bridge", *TINY, "--pair", "de-fr", "--permutations", "-1"], ["--permutations"]),
        (["probe", *TINY, "--pair", "de-fr", "-n", "999999"], ["-n 999999", "de-fr", "word pairs"]),
        (["select-bridge", *TINY, "--pair", "de-fr", "--window", "3-1"], ["--window 3-1"]),
        (["select-bridge", *TINY, "--pair", "de-fr", "--window", "a-b"], ["--window"]),
        (["select-bridge", *TINY, "--pair", "de-fr", "--top-rate", "2"], ["--top-rate"]),
        (["corpus", *TINY, "--langs", "en", "-n", "100000"], ["-n 100000", "997", "-n 997"]),
        (["corpus", *TINY, "--langs", "en", "-n", "0"], ["-n must be at least 1"]),
        (["corpus", "--model", "tiny-foo", "--langs", "en"], ["'tiny-foo'"]),
        (["probe", *TINY, "--pair", "de-fr", "--batch-size", "0"], ["--batch-size", "got 0"]),
        (["probe", *TINY, "--pair", "de-fr", "-n", "abc"], ["-n/--n-samples", "'abc'"]),
        (["probe", *TINY, "--pair", "de-fr", "--names", "klingon"], ["--names", "klingon"]),
        (["spectrum", *TINY, "--langs", "de,fr,en", "--permutations", "0"], ["--permutations"]),
        (["demo", *TINY, "--pair", "de-fr", "--bridges", "en", "--corpus-n", "5000"], ["--corpus-n 5000"]),
        (["demo", *TINY, "--pair", "de-fr", "--bridges", "en", "--eval-n", "100000"], ["--eval-n 100000"]),
        (["evaluate", "bli", *TINY, "--pair", "de-fr", "--seed", "-2"], ["--seed"]),
        (["info", "--model", "tiny-foo"], ["'tiny-foo'"]),
        (["evaluate", "bli", "--pair", "de-fr", "--shots", "x"], ["--shots", "'x'"]),
        (["evaluate", "mrc"], ["--lang"]),
        (["spectrum", *TINY, "--measure", "euclid"], ["--measure", "'euclid'"]),
        (["neuron", "STORE", "-1:0"], ["-1:0"]),
    ],
)
def test_bad_values_are_refused_before_any_work(argv, expected, tmp_path, refused, no_model_load):
    store = tmp_path / "run.h5"
    argv = [str(store) if a == "STORE" else a for a in argv]
    if argv[0] not in ("neuron", "info", "evaluate"):
        argv += ["--store", str(store)]
    refused(argv, tmp_path, *expected)
    assert list(tmp_path.iterdir()) == []  # no .lock, no .partial/, no store


def test_a_folder_as_store_is_refused(tmp_path, refused, no_model_load):
    refused(["probe", *TINY, "--pair", "de-fr", "--store", tmp_path], tmp_path, "is a folder")


def test_dictionaries_are_read_before_the_model_and_the_lock(tmp_path, refused, no_model_load):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(CHECKOUT / "probes/data/muse/de-fr.0-5000.txt", data)  # de-fr is there, en-de is not
    store = tmp_path / "run.h5"
    argv = [
        "probe",
        *TINY,
        "--pair",
        "de-fr",
        "--bridges",
        "en",
        "-n",
        "4",
        "--data-dir",
        data,
        "--store",
        store,
    ]
    refused(argv, tmp_path, "en-de")
    assert not store.exists() and not (tmp_path / "run.h5.partial").exists()


@pytest.fixture
def store_copy(tiny_store_template, tmp_path):
    path = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, path)
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["select-bridge", "--pair", "de-fr", "--bridges", "en", "--permutations", "5"],
        ["probe", "--pair", "de-fr", "--bridges", "en", "-n", "4"],
        ["corpus", "--langs", "de,fr,en", "-n", "4"],
        ["spectrum", "--langs", "de,fr,en", "--permutations", "9"],
        ["demo", "--pair", "de-fr", "--bridges", "en", "-n", "4", "--corpus-n", "4"],
    ],
)
def test_another_model_on_a_store_is_refused_by_every_writing_command(
    argv, store_copy, refused, no_model_load
):
    refused(
        [*argv, "--model", "tiny-mistral", "--store", store_copy, "--quiet"],
        store_copy.parent,
        "--model tiny-mistral",
        "'tiny-llama'",
    )


def test_an_unknown_schema_version_is_refused_for_writing(store_copy, refused, no_model_load):
    from neuronoverlap.store import checksums

    with h5py.File(store_copy, "r+") as f:  # as a future toolkit would write it, checksum valid
        f.attrs["schema_version"] = 99
        checksums.seal(f)
    line = refused(
        ["probe", *TINY, "--pair", "de-es", "-n", "2", "--store", store_copy], store_copy.parent, "schema 99"
    )
    assert "writes schema 3" in line


def test_a_second_writer_is_refused_before_the_model_loads(store_copy, refused, no_model_load):
    from neuronoverlap.store import StoreWriter

    with StoreWriter.for_existing(store_copy):
        refused(
            ["corpus", *TINY, "--langs", "es", "-n", "2", "--store", store_copy],
            store_copy.parent,
            "being written by another process",
        )


def test_a_journal_of_another_model_is_refused(store_copy, refused, no_model_load):
    journal = store_copy.with_name("run.h5.partial")
    journal.mkdir()
    (journal / "model.json").write_text(json.dumps({"model_name": "tiny-mistral"}))
    refused(
        ["corpus", *TINY, "--langs", "es", "-n", "2", "--store", store_copy],
        store_copy.parent,
        "unfinished work of 'tiny-mistral'",
    )


@pytest.mark.parametrize(
    "config",
    [
        {"model_type": "bert", "architectures": ["BertForMaskedLM"]},
        {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]},
        {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "is_encoder_decoder": True},
    ],
)
def test_architectures_without_a_gated_mlp_are_refused(config, tmp_path, refused, no_model_load):
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps(config))
    name = config["architectures"][0]
    refused(["info", "--model", checkpoint], tmp_path, name, "gated MLP")
    refused(
        ["probe", "--model", checkpoint, "--pair", "de-fr", "--store", tmp_path / "run.h5"], tmp_path, name
    )


def test_load_model_refuses_them_too(tmp_path):
    from neuronoverlap.errors import InputError
    from neuronoverlap.models import load_model

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InputError, match="not a decoder with a gated MLP"):
        load_model(tmp_path)
    with pytest.raises(InputError, match="'tiny-foo'"):
        load_model("tiny-foo")


def test_a_rejected_run_leaves_no_journal_that_blocks_the_corrected_one(tiny_llama, tmp_path):
    """A journal started but holding no block (a run refused after it started) is dropped
    when the parameters differ: nothing computed is lost, the corrected command runs."""
    from neuronoverlap.models import StopRule
    from neuronoverlap.probes import open_writer, record_probe_set, translation_probe_sets

    path = tmp_path / "run.h5"
    fwd, _ = translation_probe_sets("de", "fr", 4, seed=0)
    with open_writer(path, tiny_llama) as writer:
        writer.probe_journal("de", "fr", {**fwd.params, "batch_size": 0})
    assert (tmp_path / "run.h5.partial" / "probes" / "de-fr" / "params.json").is_file()
    with open_writer(path, tiny_llama) as writer:
        status = record_probe_set(
            tiny_llama, writer, fwd, batch_size=2, stop=StopRule(max_new_tokens=3), progress=False
        )
    assert status == "recorded" and Store(path).probes("de", "fr").n_samples == 4
    assert not (tmp_path / "run.h5.partial").exists()


def test_a_journal_with_committed_blocks_is_still_protected(tiny_llama, tmp_path):
    import numpy as np

    from neuronoverlap.errors import InputError
    from neuronoverlap.probes import open_writer, translation_probe_sets

    fwd, _ = translation_probe_sets("de", "fr", 4, seed=0)
    with open_writer(tmp_path / "run.h5", tiny_llama) as writer:
        writer.probe_journal("de", "fr", {**fwd.params, "batch_size": 2}).add_block(0, tokens=np.ones(2))
        with pytest.raises(InputError, match="differs"):
            writer.probe_progress("de", "fr", {**fwd.params, "batch_size": 3})


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neuronoverlap", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def test_verbose_keeps_the_traceback(tmp_path):
    out = run_cli(
        "--verbose",
        "probe",
        *TINY,
        "--pair",
        "de-fr",
        "--max-new-tokens",
        "0",
        "--store",
        tmp_path / "run.h5",
    )
    assert out.returncode != 0 and "Traceback" in out.stderr and "InputError" in out.stderr
    out = run_cli("probe", *TINY, "--pair", "de-fr", "--max-new-tokens", "0", "--store", tmp_path / "run.h5")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


@pytest.mark.parametrize("command", ["store-info", "neuron"])
def test_a_closed_pipe_is_quiet(command, store_copy):
    """`store-info | head` and `neuron | head`: the reader goes away, no BrokenPipeError."""
    neurons = [f"{layer}:{n}" for layer in range(4) for n in range(256)]
    argv = [command, store_copy] + (["--json", *neurons] if command == "neuron" else [])
    with subprocess.Popen(
        [sys.executable, "-m", "neuronoverlap", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err and err == "", err
    assert code in (0, 141)
    shell = subprocess.run(
        f"{sys.executable} -m neuronoverlap store-info {store_copy} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.stdout.startswith("store:") and shell.stderr == ""


def test_the_store_is_byte_identical_after_every_refusal(store_copy, refused, no_model_load):
    before = folder_snapshot(store_copy.parent)
    for argv in (
        ["select-bridge", "--pair", "de-fr", "--bridges", "en", "--temperature", "nan"],
        ["select-bridge", "--pair", "de-fr", "--bridges", "en", "--window", "3-1"],
        ["probe", "--pair", "de-fr", "--max-new-tokens", "0"],
        ["corpus", "--langs", "es", "-n", "100000"],
    ):
        refused([*argv, "--store", store_copy], store_copy.parent)
    assert folder_snapshot(store_copy.parent) == before
