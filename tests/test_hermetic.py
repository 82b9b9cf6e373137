"""The suite is hermetic: tests run in a temporary working directory, and the checkout's store/ and
out/ (where a user's own runs live) are neither read nor written (conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import CHECKOUT, folder_state, state_changes
from neuronoverlap.cli import main
from neuronoverlap.options import DEFAULT_STORE, DEMO_OUT, DEMO_STORE


def test_each_test_runs_in_a_fresh_temporary_folder(tmp_path):
    cwd = Path.cwd().resolve()
    assert not cwd.is_relative_to(CHECKOUT) and list(cwd.iterdir()) == []
    for default in (DEFAULT_STORE, DEMO_STORE, DEMO_OUT, "out/report"):
        assert not Path(default).resolve().is_relative_to(CHECKOUT), default


def test_a_users_partial_store_in_the_working_folder_is_what_commands_see(capsys):
    """The failure of issue 30: a user's interrupted `probe ... --store store/run.h5` of another
    model. In the working folder it is refused as it should be; the suite's own working folders
    never hold one, so `test_bad_input_is_one_line_exit_2` sees only its own input."""
    planted = Path("store/run.h5.partial")
    planted.mkdir(parents=True)
    (planted / "model.json").write_text('{"model_name": "another-model", "model_fingerprint": "0123"}')
    (planted / "probes" / "zh-ja").mkdir(parents=True)
    (planted / "probes" / "zh-ja" / "params.json").write_text('{"n_samples": 200}')  # unfinished work
    before = {p: p.read_bytes() for p in planted.rglob("*") if p.is_file()}
    code = main(["probe", "--model", "tiny-llama", "--pair", "de-fr", "-n", "2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "holds unfinished work of 'another-model'" in err and "Traceback" not in err, err
    assert {p: p.read_bytes() for p in planted.rglob("*") if p.is_file()} == before


def test_the_session_check_sees_added_changed_and_removed_files(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "README.md").write_text("kept")
    (tmp_path / "store" / "old.h5").write_bytes(b"x")
    before = folder_state(tmp_path)
    assert state_changes(before, folder_state(tmp_path)) == []
    (tmp_path / "store" / "run.h5.partial").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.html").write_text("page")
    (tmp_path / "store" / "README.md").write_text("changed")
    os.utime(tmp_path / "store" / "README.md", ns=(1, 1))
    (tmp_path / "store" / "old.h5").unlink()
    assert state_changes(before, folder_state(tmp_path)) == [
        "added out",
        "added out/report.html",
        "changed store",
        "changed store/README.md",
        "removed store/old.h5",
        "added store/run.h5.partial",
    ]


@pytest.fixture(scope="session")
def session_fixture_cwd() -> Path:
    return Path.cwd().resolve()


def test_session_fixtures_run_outside_the_checkout(session_fixture_cwd):
    """A session fixture is set up before any test's own folder: it gets a temporary one too."""
    assert not session_fixture_cwd.is_relative_to(CHECKOUT)
