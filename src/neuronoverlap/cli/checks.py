"""Checks of a command line's values and of its store, run before any work: before the model is
loaded, the lock taken or a journal written. Each failure is one `InputError` naming the option.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from neuronoverlap.errors import InputError
from neuronoverlap.options import (
    BridgeOptions,
    CorpusOptions,
    OptionError,
    ProbeOptions,
    SpectrumOptions,
    check_top_rate,
)

#: Commands that may write into --store.
WRITING_COMMANDS = ("probe", "corpus", "spectrum", "select-bridge", "demo", "validate", "evaluate")
WRITING_COMMANDS += ("intervene",)  # interventions (issue 28)

#: option attribute -> (flag, smallest value allowed)
_AT_LEAST = {
    "max_new_tokens": ("--max-new-tokens", ProbeOptions.AT_LEAST["max_new_tokens"]),
    "batch_size": ("--batch-size", ProbeOptions.AT_LEAST["batch_size"]),
    "n_samples": ("-n", ProbeOptions.AT_LEAST["n_samples"]),
    "n_sentences": ("-n", CorpusOptions.AT_LEAST["n_sentences"]),
    "corpus_n": ("--corpus-n", 1),
    "eval_n": ("--eval-n", 1),
    "permutations": ("--permutations", SpectrumOptions.AT_LEAST["n_permutations"]),
    "seed": ("--seed", 0),
    "shots": ("--shots", 0),
    "examples": ("--examples", 0),
    "random_sets": ("--random-sets", BridgeOptions.AT_LEAST["n_random"]),
    "bootstrap": ("--bootstrap", BridgeOptions.AT_LEAST["n_bootstrap"]),
    "top_k": ("--top-k", 1),
}

#: commands where --permutations 0 means "no permutation test" (bridge selection)
_PERMUTATIONS_OPTIONAL = ("select-bridge", "demo")


def check_options(args) -> None:
    """The option values of any command (only those it has), and its --model spec."""
    for attr, (flag, least) in _AT_LEAST.items():
        if attr == "permutations" and getattr(args, "command", None) in _PERMUTATIONS_OPTIONAL:
            least = BridgeOptions.AT_LEAST["n_permutations"]
        value = getattr(args, attr, None)
        if isinstance(value, int) and value < least:
            raise InputError(f"{flag} must be at least {least}, got {value}")
    top_rate = getattr(args, "top_rate", None)
    if top_rate is not None:
        try:
            check_top_rate("command line", top_rate)
        except OptionError as error:
            raise error.named("--top-rate") from None
    if getattr(args, "window", None):
        parse_window(args.window)
    if getattr(args, "model", None):
        from neuronoverlap.models.spec import model_name_of

        model_name_of(str(args.model))


#: Options that name a file or folder a command writes (merge's positional `out` is a new store).
OUTPUT_OPTIONS = {"json": "--json", "out": "--out"}


def check_outputs(args) -> None:
    """Every output path of any command: never an input store, a shard, or any HDF5 file
    (`store.paths.check_output`, the one rule)."""
    from neuronoverlap.store.paths import check_output

    if getattr(args, "command", None) == "merge":
        return
    inputs = [getattr(args, "store", None), *(getattr(args, "shards", None) or [])]
    for attr, flag in OUTPUT_OPTIONS.items():
        value = getattr(args, attr, None)
        if isinstance(value, (str, Path)):
            check_output(value, flag, inputs)


def _given_store(args) -> Path | None:
    """The store file a command reads: --store, STORE, or (neuron) the first item."""
    items = getattr(args, "items", None) or []
    for value in (getattr(args, "store", None), getattr(args, "store_positional", None), *items[:1]):
        if value and Path(str(value)).is_file():
            return Path(str(value))
    return None


def check_shard(args) -> None:
    """A single shard of a work plan holds part of the data: commands that write or decide
    from the store refuse it; commands that read it say so on stderr (which units it holds)."""
    import sys

    from neuronoverlap.store.reader import shard_units

    path = _given_store(args)
    if path is None or getattr(args, "command", None) in ("merge",) or getattr(args, "shards", None):
        return
    try:
        shard = shard_units(path)
    except InputError:
        return  # not readable: the command's own open says why
    if shard is None:
        return
    index, count, units = shard
    merge = "merge the shards first (`neuronoverlap merge OUT SHARD ...`)"
    if args.command in WRITING_COMMANDS:
        raise InputError(f"{path} is shard {index} of {count} of a work plan, not a whole store; {merge}")
    held = ", ".join(units) or "no units yet"
    print(
        f"neuronoverlap: note: {path} is shard {index} of {count} of a work plan and holds only {held}; "
        f"{merge} for the whole plan",
        file=sys.stderr,
    )


def parse_window(text: str | None) -> list[int] | None:
    """'6-11' or '6,7,8' -> layer ids (each >= 0; a range first <= last)."""
    if not text:
        return None
    try:
        if "-" in text:
            first, last = (int(x) for x in text.split("-"))
            layers = list(range(first, last + 1))
        else:
            layers = [int(x) for x in text.split(",")]
    except ValueError:
        raise InputError(f"--window takes 'first-last' or a comma list of layers, got {text!r}") from None
    if not layers:
        raise InputError(f"--window {text}: the first layer must not exceed the last")
    if min(layers) < 0:
        raise InputError(f"--window layers must be >= 0, got {text}")
    return layers


def _lock_held(store: Path) -> bool:
    lock = store.with_name(store.name + ".lock")
    if not lock.is_file():
        return False
    with open(lock, "rb") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def check_store(args) -> None:
    """For a command that writes --store: the store readable, of this schema version, of the
    --model asked for (by name), its journal of that model, and no other writer at work."""
    store = getattr(args, "store", None)
    if store is not None:
        from neuronoverlap.store.paths import resolve_store

        resolve_store(store)  # empty, or a symlink loop: refused here
    if store and Path(store).is_dir():
        raise InputError(f"--store {store} is a folder; give a store file, e.g. {Path(store) / 'run.h5'}")
    if getattr(args, "command", None) not in WRITING_COMMANDS or not store:
        return
    path = Path(store)
    asked = None
    if args.model:
        from neuronoverlap.models.spec import model_name_of

        asked = model_name_of(str(args.model))
    if path.exists():
        from neuronoverlap.store import Store
        from neuronoverlap.store.writer import check_writable

        check_writable(path)
        store = Store(path)
        if asked is not None and store.model_name != asked:
            raise InputError(
                f"--model {args.model}: {path} was written by another model, {store.model_name!r}; use that "
                "model (or omit --model) or another --store"
            )
    marker = path.with_name(path.name + ".partial") / "model.json"
    if asked is not None and marker.is_file():
        try:
            journal_model = json.loads(marker.read_text()).get("model_name")
        except (OSError, json.JSONDecodeError, AttributeError):
            journal_model = None
        if journal_model not in (None, asked):
            raise InputError(
                f"--model {args.model}: {marker.parent} holds unfinished work of "
                f"{journal_model!r}; finish it with that model or use another --store"
            )
    if _lock_held(path):
        raise InputError(f"{path} is being written by another process (lock held)")
