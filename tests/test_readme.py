"""README.md runs as written: its Python block and its `neuronoverlap` command lines, in order, in a
fresh folder, on the tiny model (the embedded one takes minutes to hours there, as the README says).

Only the model and the sizes change: `--model embedded` becomes tiny-llama, and each command gets
the small sizes of `TINY_SIZES` (replacing the README's value where it gives one). The calls, the
store paths and every other option are the README's. The cluster block (shards on /models and
/shared, Ray) is left out: tests/test_store_shards.py and tests/test_store_ray.py run it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from conftest import CHECKOUT
from neuronoverlap.cli import main

README = CHECKOUT / "README.md"
TINY = "tiny-llama"

#: command -> options that make it small on the tiny model (a README value for one is replaced).
TINY_SIZES = {
    "demo": ["-n", "4", "--corpus-n", "4", "--eval-n", "4", "--max-new-tokens", "3", "--random-sets", "20"]
    + ["--bootstrap", "20"],
    "info": ["--max-new-tokens", "2"],
    "probe": ["-n", "4", "--max-new-tokens", "3"],
    "corpus": ["-n", "4"],
    "select-bridge": ["--random-sets", "20", "--bootstrap", "20"],
    "evaluate": ["-n", "4", "--max-new-tokens", "3"],
    "spectrum": ["--permutations", "99"],
    "latent": ["-n", "4"],
    "agreement": ["--random-sets", "50", "--shuffles", "49"],
    "report": ["--permutations", "19"],
    "validate": ["-n", "6", "--probe-n", "4", "--max-new-tokens", "3", "--eval-max-new-tokens", "3"]
    + ["--example-seeds", "1", "--splits", "10", "--bootstrap", "50", "--random-sets", "20"],
}

#: Commands that load the embedded model unless told otherwise.
NEEDS_MODEL = ("demo", "info")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def command_lines(block: str) -> list[list[str]]:
    """The `neuronoverlap ...` lines of a shell block, as argument lists (comments dropped)."""
    return [
        shlex.split(line, comments=True)[1:]
        for line in block.splitlines()
        if line.startswith("neuronoverlap ")
    ]


def on_tiny(argv: list[str]) -> list[str]:
    """The README's command on the tiny model with small sizes; neuron ids folded into its 4 x 256."""
    argv = ["tiny-llama" if a == "embedded" else a for a in argv]
    argv = [
        f"{int(m[1]) % 4}:{int(m[2]) % 256}" if (m := re.fullmatch(r"(\d+):(\d+)", a)) else a for a in argv
    ]
    command = argv[0]
    if command in NEEDS_MODEL and "--model" not in argv:
        argv += ["--model", TINY]
    sizes = TINY_SIZES.get(command, [])
    for flag, value in zip(sizes[::2], sizes[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    quiet = command not in (
        "info",
        "languages",
        "neuron",
        "store-info",
        "verify",
        "agreement",
        "export-neurons",
        "pool-studies",
    )
    return [*argv, "--quiet"] if quiet else argv


def test_the_readme_blocks_are_the_ones_this_test_runs():
    shell = blocks("bash")
    assert len(shell) == 5 and shell[0].startswith("make demo")
    assert "--shard" in shell[4] and "ray start" in shell[4]  # the cluster block, left out
    assert [a[0] for a in command_lines(shell[1])][:3] == ["languages", "info", "store-info"]
    assert [a[0] for a in command_lines(shell[2])] == [
        "probe",
        "corpus",
        "select-bridge",
        "evaluate",
        "spectrum",
        "report",
        "latent",
    ]
    assert [a[0] for a in command_lines(shell[3])] == ["validate", "validate", "pool-studies"]
    assert len(blocks("python")) == 1


@pytest.mark.slow
def test_the_readme_commands_run_in_order_on_the_tiny_model(capsys):
    shell = blocks("bash")
    # `make demo` is `neuronoverlap demo`: the command-line block reads its store
    assert main(on_tiny(["demo"])) == 0
    for block in shell[1:4]:
        for argv in command_lines(block):
            code = main(on_tiny(argv))
            assert code == 0, (argv, capsys.readouterr().err[-2000:])
    out = capsys.readouterr().out
    assert "torch thread" in out and "tiny-llama" in out
    for path in (
        "store/demo.h5",
        "store/run.h5",
        "out/report/report.html",
        "out/validate-short/validate.json",
    ):
        assert Path(path).exists(), path


#: The Python block's embedded-model sizes, and what the tiny model runs instead.
PYTHON_ON_TINY = {
    'no.load_model("embedded")': 'no.load_model("tiny-llama")',
    "no.ProbeOptions(n_samples=200)": "no.ProbeOptions(n_samples=4, max_new_tokens=3)",
    'no.record_corpora("store/run.h5", ["he"], model)': (
        'no.record_corpora("store/run.h5", ["he"], model, no.CorpusOptions(n_sentences=4))'
    ),
    'no.choose_bridge("store/run.h5", "zh-ja", ["en"], model)': (
        'no.choose_bridge("store/run.h5", "zh-ja", ["en"], model, '
        "options=no.BridgeOptions(n_random=20, n_bootstrap=20))"
    ),
    ".layer(12)": ".layer(2)",
}


def test_the_readme_python_block_runs_on_the_tiny_model():
    (block,) = blocks("python")
    for embedded, tiny in PYTHON_ON_TINY.items():
        assert block.count(embedded) == 1, embedded
        block = block.replace(embedded, tiny)
    namespace: dict = {}
    exec(compile(block, "README.md python block", "exec"), namespace)
    selection = namespace["selection"]
    assert selection.chosen == "en" and set(selection.selection_probability) == {"en"}
    with namespace["no"].Store("store/run.h5") as store:
        assert store.corpus("he").activation_probability().shape == (4, 256)
