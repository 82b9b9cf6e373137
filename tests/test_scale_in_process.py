"""The default, in-process recording executes the work plan's units in plan order, with the plan's
batches: its store equals, chunk for chunk, a probe set recorded whole; interrupted at a unit
boundary or mid-unit, the rerun resumes from the journal and gives the same store."""

from __future__ import annotations

import pytest

import neuronoverlap.scale.units as units
from neuronoverlap.errors import InputError
from neuronoverlap.models import StopRule
from neuronoverlap.probes import open_writer, record_probe_set, translation_probe_sets
from neuronoverlap.scale.units import Job, run_in_process, set_status
from neuronoverlap.store.journal import Journal

N, BATCH = 70, 4  # units [0:64] and [64:70] of each probe set
STOP = StopRule(max_new_tokens=2)


@pytest.fixture(scope="module")
def probe_sets():
    return translation_probe_sets("de", "es", N, seed=0)


@pytest.fixture(scope="module")
def whole(tmp_path_factory, tiny_llama, probe_sets):
    """The oracle: each probe set recorded whole (`record_probe_set` without `rows`)."""
    path = tmp_path_factory.mktemp("whole") / "whole.h5"
    with open_writer(path, tiny_llama) as writer:
        for probe_set in probe_sets:
            assert record_probe_set(tiny_llama, writer, probe_set, BATCH, STOP, progress=False) == "recorded"
    return path


def _job(path, probe_sets):
    return Job(path, list(probe_sets), batch_size=BATCH, stop=STOP, model_spec="tiny-llama")


def test_the_default_run_executes_the_plan_units_in_order(
    tiny_llama, probe_sets, whole, tmp_path, monkeypatch
):
    from test_store_shards import chunks

    job, seen, reports = _job(tmp_path / "run.h5", probe_sets), [], []
    real = units.record_unit

    def spy(model, writer, job, unit, progress):
        seen.append(unit)
        return real(model, writer, job, unit, progress)

    monkeypatch.setattr(units, "record_unit", spy)
    statuses = run_in_process(
        tiny_llama, job, progress=False, report=lambda u, s: reports.append((u.rows, s))
    )
    assert seen == list(job.plan.units) and len(seen) == 4
    assert statuses == {"de-es": "recorded", "es-de": "recorded"}
    assert reports == [((0, 64), "recorded"), ((64, 70), "recorded")] * 2
    assert chunks(job.store) == chunks(whole)
    assert run_in_process(tiny_llama, job, progress=False) == {
        "de-es": "already stored",
        "es-de": "already stored",
    }


class Crash(Exception):
    pass


def test_interrupted_at_a_unit_boundary_the_rerun_resumes(tiny_llama, probe_sets, whole, tmp_path):
    from test_store_shards import chunks

    job = _job(tmp_path / "run.h5", probe_sets)

    def crash(unit, status):
        if unit.rows == (0, 64) and unit.name == "es-de":
            raise Crash

    with pytest.raises(Crash):
        run_in_process(tiny_llama, job, progress=False, report=crash)
    journal = Journal(tmp_path / "run.h5.partial", "probes", "es-de")
    assert journal.n_committed() == 64  # the first unit journaled, the probe set not committed
    statuses = []
    assert run_in_process(tiny_llama, job, False, lambda u, s: statuses.append((u.rows, s))) == {
        "de-es": "already stored",
        "es-de": "resumed",
    }
    assert statuses[2:] == [((0, 64), "already stored"), ((64, 70), "resumed")]
    assert chunks(job.store) == chunks(whole)
    assert not journal.dir.exists()


def test_interrupted_mid_unit_the_rerun_equals_uninterrupted(
    tiny_llama, probe_sets, whole, tmp_path, monkeypatch
):
    from test_store_shards import chunks

    job, calls = _job(tmp_path / "run.h5", probe_sets), []
    real = Journal.add_block

    def add_block(self, start, **arrays):
        calls.append(start)
        if len(calls) == 18:  # de-es: the second batch of its unit [64:70]
            raise Crash
        real(self, start, **arrays)

    monkeypatch.setattr(Journal, "add_block", add_block)
    with pytest.raises(Crash):
        run_in_process(tiny_llama, job, progress=False)
    monkeypatch.setattr(Journal, "add_block", real)
    assert Journal(tmp_path / "run.h5.partial", "probes", "de-es").n_committed() == 68
    assert run_in_process(tiny_llama, job, progress=False) == {"de-es": "resumed", "es-de": "recorded"}
    assert chunks(job.store) == chunks(whole)


def test_units_of_a_probe_set_are_recorded_in_plan_order(tiny_llama, probe_sets, tmp_path):
    job = _job(tmp_path / "run.h5", probe_sets[:1])
    later = job.plan.units[1]
    with open_writer(job.store, tiny_llama) as writer:
        with pytest.raises(InputError, match="units are recorded in plan order"):
            units.record_unit(tiny_llama, writer, job, later, progress=False)


def test_a_probe_sets_status_from_its_units():
    assert set_status(["already stored", "already stored"]) == "already stored"
    assert set_status(["recorded", "recorded"]) == "recorded"
    assert set_status(["already stored", "recorded"]) == "resumed"
    assert set_status(["resumed", "recorded"]) == "resumed"
