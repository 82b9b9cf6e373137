"""results/fullsize's checkpoint and restore: what a new machine needs to go on with the full-size
run is copied into the repository, never the store, and restoring never overwrites what the
working folder already has."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "results" / "fullsize"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _script(name: str, work: Path, state: Path) -> str:
    env = {**os.environ, "WORK": str(work), "STATE": str(state)}
    done = subprocess.run(["bash", str(SCRIPTS / name)], env=env, capture_output=True, text=True, check=True)
    return done.stdout


def _working_folder(root: Path) -> Path:
    work = root / "work"
    files = {
        "out/fullsize/plan.json": '{"pairs": ["de-es"]}',
        "out/fullsize/study/cache/gen-0123.json": '{"outputs": {"Hund": "perro"}}',
        "out/fullsize/analysis/tests-parts/k/test2-draws.json": '{"draws": [0.1]}',
        "out/fullsize/analysis/tests.md": "# tests",
        "store/fullsize.h5": "not a real store",
        "src-stage1/src/neuronoverlap/__init__.py": "",
        "run.log": "== stage1 start\n",
        "stage1.log": "probe de-es:  25%\rprobe de-es:  50%\rprobe de-es: 100%\n\x1b[Adone\n",
        "stage1.done": "",
    }
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text, encoding="utf-8")
    return work


def test_checkpoint_keeps_the_runs_small_files_and_never_the_store(tmp_path):
    work, state = _working_folder(tmp_path), tmp_path / "state"
    printed = _script("checkpoint.sh", work, state)
    kept = sorted(str(p.relative_to(state)) for p in state.rglob("*") if p.is_file())
    assert kept == [
        "logs/run.log",
        "logs/stage1.log",
        "out/fullsize/analysis/tests-parts/k/test2-draws.json",
        "out/fullsize/analysis/tests.md",
        "out/fullsize/plan.json",
        "out/fullsize/study/cache/gen-0123.json",
        "stage1.done",
    ]
    assert (state / "logs/stage1.log").read_text() == "probe de-es: 100%\ndone\n"
    assert "4 files changed" in printed
    assert "0 files changed" in _script("checkpoint.sh", work, state)


def test_restore_fills_a_new_folder_and_overwrites_nothing(tmp_path):
    state = tmp_path / "state"
    _script("checkpoint.sh", _working_folder(tmp_path), state)
    new = tmp_path / "new"
    (new / "out/fullsize").mkdir(parents=True)
    (new / "out/fullsize/plan.json").write_text("newer", encoding="utf-8")
    assert _script("restore.sh", new, state).strip() == "4"
    assert (new / "out/fullsize/plan.json").read_text() == "newer"
    assert (new / "out/fullsize/study/cache/gen-0123.json").read_text() == '{"outputs": {"Hund": "perro"}}'
    assert (new / "stage1.done").exists()
    assert not (new / "store").exists()
    assert _script("restore.sh", new, state).strip() == "0"
