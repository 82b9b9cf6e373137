"""docs/tutorial.md runs as written: its Python blocks, in order, in a fresh folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_tutorial_runs_as_written(tmp_path, capsys):
    blocks = python_blocks(TUTORIAL.read_text(encoding="utf-8"))
    assert len(blocks) >= 6
    namespace: dict = {}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for number, block in enumerate(blocks, start=1):
            exec(compile(block, f"{TUTORIAL.name} block {number}", "exec"), namespace)
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "recorded" in out and "tiny-llama" in out
    assert namespace["selection"].chosen in ("en", "es")
    assert (tmp_path / "report" / "report.html").is_file()
