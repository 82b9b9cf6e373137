"""The entry rule of the `python -m` scripts (cli/script.py) and the scripts that use it."""

from __future__ import annotations

import pytest

from neuronoverlap.cli.script import script_main
from neuronoverlap.errors import InputError


def test_a_mistake_is_one_line_and_exit_2_an_interrupt_130(capsys):
    def mistake():
        raise InputError("no store at x.h5\nsecond line never shown")

    def interrupted():
        raise KeyboardInterrupt

    assert script_main(lambda: None) == 0
    assert script_main(mistake) == 2
    assert capsys.readouterr().err == "neuronoverlap: error: no store at x.h5\n"
    assert script_main(interrupted) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):  # a bug is not hidden as a user's mistake
        script_main(lambda: 1 / 0)


@pytest.mark.parametrize(
    "module", ["neuronoverlap.evaluation.fullsize", "neuronoverlap.evaluation.fullsize_analysis"]
)
def test_the_study_scripts_report_a_missing_store_in_one_line(module, tmp_path, capsys):
    import importlib

    main = importlib.import_module(module).main
    code = main(["--store", str(tmp_path / "absent.h5"), "--out", str(tmp_path / "out"), "--model", "x"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("neuronoverlap: error:")
