"""The `neuronoverlap` command line: parse, call the library, print.

Exit codes: 0 success, 2 bad input (one-line message, no traceback; `--verbose` shows it),
130 interrupted, 141 output pipe closed. Heavy libraries are imported only once a command runs,
so `--help` answers at once.
"""

from __future__ import annotations

import os
import re
import sys

from neuronoverlap import __version__
from neuronoverlap.cli import bridge, demo, evaluate, info, intervene, latent, record, report, spectrum, store
from neuronoverlap.cli import neurons as neuron_commands
from neuronoverlap.cli.options import LANGUAGES_HELP, Parser
from neuronoverlap.errors import InputError

#: The commands in the order `--help` lists them (the pipeline's order).
COMMAND_MODULES = (
    info,
    record,
    spectrum,
    bridge,
    latent,
    evaluate,
    intervene,
    report,
    demo,
    store,
    neuron_commands,
)


def build_parser() -> Parser:
    parser = Parser(
        prog="neuronoverlap",
        description="How a language model shares MLP neurons across languages: record probe "
        "activations into an HDF5 store, build neuron sets, measure dependence with "
        "HSIC and choose a bridge language for cross-lingual in-context learning. "
        "Start with `neuronoverlap demo`; every command takes --help.",
        epilog=LANGUAGES_HELP,
    )
    parser.add_argument("--version", action="version", version=f"neuronoverlap {__version__}")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return parser


def _warnings_above_bars() -> None:
    """Library warnings printed with `tqdm.write`, so they do not break a progress bar."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None):
        from tqdm.auto import tqdm

        tqdm.write(
            warnings.formatwarning(message, category, filename, lineno, line).rstrip(), file=sys.stderr
        )

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if sys.stdout is None:  # started with stdout closed (`>&-`)
        print(
            "neuronoverlap: error: standard output is closed; redirect it (e.g. >/dev/null)", file=sys.stderr
        )
        return 2
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    negative = next((a for a in argv if re.fullmatch(r"-\d+:-?\d+", a)), None)
    if negative is not None:  # argparse would read it as an unknown option
        print(f"neuronoverlap: error: neuron {negative}: LAYER:NEURON counts from 0", file=sys.stderr)
        return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line argparse error (code 2)
        return exc.code if isinstance(exc.code, int) else 2
    if not args.command:
        parser.print_help()
        return 2
    _warnings_above_bars()
    try:
        from neuronoverlap.cli.checks import check_options, check_outputs, check_shard, check_store

        check_options(args)
        check_outputs(args)
        check_store(args)
        check_shard(args)
        if hasattr(args, "threads"):  # a command that computes with torch
            from neuronoverlap.threads import set_threads

            set_threads(args.threads)
        code = args.run(args)
        sys.stdout.flush()  # inside the try: a reader gone (`| head`) is a BrokenPipeError here
        return code
    except InputError as exc:
        if args.verbose:
            raise
        message = (str(exc).splitlines() or [type(exc).__name__])[0]
        print(f"neuronoverlap: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of our output went away (`store-info | head`): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        if args.verbose:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
        print(f"neuronoverlap: error: {where}{reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("neuronoverlap: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
