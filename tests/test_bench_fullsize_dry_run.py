"""The GPU benchmark of the paper's model shapes runs end to end on the CPU (`--dry-run`): the
same code path, with the LLaMA-3-8B and Mistral-7B architectures scaled down, so that device
time is never spent discovering a broken script."""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_fullsize_gpu.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_fullsize_gpu", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_measures_every_pass_on_both_architectures(capsys):
    rows = load_bench().main(
        [
            "--dry-run",
            "--n",
            "8",
            "--batch-sizes",
            "4",
            "--max-new-tokens",
            "3",
            "--threads",
            "1",
            "--repeats",
            "1",
        ]
    )
    table = capsys.readouterr().out
    assert "| model | measure | value |" in table
    by_model = {
        kind: {measure: value for k, measure, value in rows if k == kind} for kind in ("llama", "mistral")
    }
    for measures in by_model.values():
        check = next(v for m, v in measures.items() if m.startswith("max |act"))
        assert float(check.split()[0]) < 1e-5  # the toolkit's activation is the HF MLP's
        rates = next(v for m, v in measures.items() if m.startswith("batch 4: tok/s"))
        assert all(float(r.replace(",", "")) > 0 for r in rates.split(" / "))
        assert len(rates.split(" / ")) == 5
        assert any(m.startswith("record 8 probes") for m in measures)
    assert {"llama", "mistral"} <= {kind for kind, _, _ in rows}


def test_full_run_without_a_device_points_to_the_dry_run(capsys):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the full run would start")
    with pytest.raises(SystemExit) as exit_info:
        load_bench().main(["--n", "8"])
    assert exit_info.value.code == 2
    assert "--dry-run" in capsys.readouterr().err
