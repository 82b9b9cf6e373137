"""The `neuronoverlap` command line: a thin layer of parse -> call -> print over the library
(`neuronoverlap.pipeline` and the step packages). One module per group of commands; the shared
options are in `options.py`, the checks run before any work in `checks.py`."""

from neuronoverlap.cli.main import build_parser, main


def __getattr__(name: str):
    if name == "bridge_table":  # the printed ranking (bridge/table.py), kept importable here
        from neuronoverlap.bridge.table import bridge_table

        return bridge_table
    raise AttributeError(f"module 'neuronoverlap.cli' has no attribute {name!r}")


__all__ = ["build_parser", "main"]
