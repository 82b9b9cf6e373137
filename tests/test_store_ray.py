"""The Ray executor on a local two-CPU cluster: a pool of actors records the plan's units into
their own shards, merged into a store equal to the single-process one, chunk for chunk, also
when an actor is killed mid-run. Without Ray, `--executor ray` says how to install it."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from neuronoverlap.cli import main
from neuronoverlap.models import StopRule
from neuronoverlap.probes import translation_probe_sets
from neuronoverlap.scale.units import Job, run_in_process

MODEL = "tiny-llama"


def test_without_ray_the_executor_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    argv = ["probe", "--model", MODEL, "--pair", "de-es", "-n", "4", "--executor", "ray"]
    assert main([*argv, "--store", str(tmp_path / "run.h5"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'neuronoverlap[ray]'" in err and "\n" not in err
    assert not (tmp_path / "run.h5").exists()


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray")
    env = {k: "1" for k in ("OMP_NUM_THREADS", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def oracle(tmp_path_factory, tiny_llama):
    """The job and its single-process store (one torch thread, as in every Ray worker)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("ray")
    sets = translation_probe_sets("de", "es", 150, seed=0)
    job = Job(folder / "single.h5", sets, batch_size=4, stop=StopRule(max_new_tokens=2), model_spec=MODEL)
    run_in_process(tiny_llama, job, progress=False)
    torch.set_num_threads(threads)
    return job


def _ray_job(oracle, path):
    return Job(**{**oracle.__dict__, "store": path})


@pytest.mark.slow
def test_ray_equals_single(ray_cluster, oracle, tmp_path):
    from neuronoverlap.scale.ray_executor import run_on_ray
    from test_store_shards import chunks

    job = _ray_job(oracle, tmp_path / "run.h5")
    summary = run_on_ray(job, workers=2)
    assert summary["units"] == 6 and summary["replaced"] == 0
    assert chunks(job.store) == chunks(oracle.store)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]  # shards merged and removed


@pytest.mark.slow
def test_a_killed_actor_is_replaced_and_the_result_identical(ray_cluster, oracle, tmp_path):
    from neuronoverlap.scale.ray_executor import run_on_ray
    from test_store_shards import chunks

    events, killed = [], []

    def report(event, worker, unit, pids):
        events.append((event, worker, unit))
        if event == "done" and not killed:  # the other worker is mid-unit: kill its process
            other = next(pid for w, pid in pids.items() if w != worker)
            os.kill(other, signal.SIGKILL)
            killed.append(other)

    job = _ray_job(oracle, tmp_path / "run.h5")
    summary = run_on_ray(job, workers=2, report=report)
    assert killed and summary["replaced"] >= 1 and any(e[0] == "lost" for e in events)
    assert chunks(job.store) == chunks(oracle.store)
