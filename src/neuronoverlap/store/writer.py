"""Writing a store: one writer at a time, crash-safe, resumable, bound to one model.

Work in progress is committed block by block to the journal beside the store (see
`journal.py`). When a probe set or corpus is complete it is merged into the HDF5 file in place,
under an undo log (`undo.py`): a commit costs O(new data), and a kill at any moment leaves the
old store recoverable byte for byte (readers see it, the next writer restores it). `kill -9`
at any moment loses at most the block being computed.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from neuronoverlap.errors import InputError
from neuronoverlap.sets.core import NeuronSet
from neuronoverlap.store import checksums, schema, space, undo
from neuronoverlap.store.commit import commit_in_place, commit_new
from neuronoverlap.store.contexts import CONTEXTS, journal_top, merge_top, stored_top, write_contexts
from neuronoverlap.store.journal import (
    Journal,
    atomic_write_bytes,
    make_dirs,
    read_json,
    remove_discarded,
    remove_empty_dirs,
)
from neuronoverlap.store.neuron_sets import write_neuron_set
from neuronoverlap.store.paths import resolve_store
from neuronoverlap.store.probe_layout import (
    STRING_DTYPE,
    probe_dataset_layout,
    top_state,
    unit_name,
    write_blocks,
)
from neuronoverlap.store.reader import open_h5
from neuronoverlap.versions import library_versions


@dataclass(frozen=True)
class ModelInfo:
    """What the store records of the model that wrote it."""

    name: str
    fingerprint: str
    n_layers: int
    d_mlp: int
    config: dict = field(default_factory=dict)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


#: Parameters recorded only since a later toolkit: an entry stored before lacks them, and is not
#: refused for that (what it was recorded with is unknown; store-info says so).
ADDED_PARAMS = ("dtype", "device")


def _first_difference(stored: dict, asked: dict) -> str | None:
    for key in sorted(set(stored) | set(asked)):
        if stored.get(key) != asked.get(key):
            return f"{key}: stored {stored.get(key)!r}, asked {asked.get(key)!r}"
    return None


class StoreWriter:
    """The single writer of a store file. Use as a context manager."""

    def __init__(
        self,
        path: str | Path,
        model: ModelInfo,
        toolkit_version: str = "0",
        upgrading: bool = False,
        shard: dict | None = None,
    ):
        """`upgrading`: the lock of an older store, for `store.upgrade` only (no commits).
        `shard`: this store is shard `index` of `count` of a work plan (`plan`: its JSON)."""
        self.path = resolve_store(path)  # two links to one store: one lock, one journal
        self.shard = shard
        self.model = model
        self.toolkit_version = toolkit_version
        self.journal_root = self.path.with_name(self.path.name + ".partial")
        self.group = schema.model_group(model.name)
        if not upgrading:
            check_writable(self.path)
        made_parent = not self.path.parent.exists()
        make_dirs(self.path.parent)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self._lock_file = open(self._lock_path, "a+")
        except OSError as exc:
            raise space.storage_error(exc, self._lock_path, 0, "creating the lock") from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise InputError(f"{self.path} is being written by another process (lock held)") from None
        try:
            undo.roll_back(self.path)  # a commit interrupted by a kill: the store as it was
            remove_discarded(self.journal_root)  # journals a kill left half-deleted
            self._check_model()
        except BaseException:
            self.close()
            if made_parent:
                remove_empty_dirs(self.path.parent)
            raise

    @classmethod
    def for_existing(cls, path: str | Path, upgrading: bool = False) -> StoreWriter:
        """A writer for a store that exists, bound to the model recorded in it (no model load)."""
        with open_h5(path) as f:
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
        if "model_fingerprint" not in attrs:
            raise InputError(f"{path} is an HDF5 file but not a neuronoverlap store")
        info = ModelInfo(
            attrs["model_name"],
            attrs["model_fingerprint"],
            int(attrs["n_layers"]),
            int(attrs["d_mlp"]),
            json.loads(attrs.get("model_config", "{}")),
        )
        return cls(path, info, toolkit_version=str(attrs.get("toolkit_version", "0")), upgrading=upgrading)

    # --- life cycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Release the lock. A journal that holds no work is removed, and then the lock file
        too (this writer holds it: nobody else is writing), so a finished, refused or empty run
        leaves nothing beside the store."""
        if self._lock_file.closed:
            return
        marker = self.journal_root / "model.json"
        if self.journal_root.is_dir() and not any(
            p.is_file() and p != marker for p in self.journal_root.rglob("*")
        ):
            marker.unlink(missing_ok=True)
            remove_empty_dirs(self.journal_root)
        # Unlinked while still held: a process that opened it before now fails its
        # non-blocking flock, one that opens it after creates a fresh lock file.
        if not self.journal_root.exists():
            self._lock_path.unlink(missing_ok=True)
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _model_attrs(self) -> dict:
        return {
            "model_name": self.model.name,
            "model_fingerprint": self.model.fingerprint,
            "activation_definition": schema.ACTIVATION_DEFINITION,
            "n_layers": self.model.n_layers,
            "d_mlp": self.model.d_mlp,
        }

    def _check_model(self) -> None:
        asked = self._model_attrs()
        if self.path.exists():
            with open_h5(self.path) as f:
                stored = {k: _plain(f.attrs.get(k)) for k in asked}
            diff = _first_difference(stored, asked)
            if diff:
                raise InputError(
                    f"{self.path} was written with another model or definition ({diff}); use that model "
                    "(or leave --model out) or another --store"
                )
        if self.path.exists() and self.shard is not None:
            with open_h5(self.path) as f:
                stored = {k: _plain(f.attrs.get(k)) for k in ("plan_id", "shard_index", "shard_count")}
            diff = _first_difference(stored, self._shard_attrs())
            if diff:
                raise InputError(f"{self.path} is a shard of another work plan ({diff})")
        marker = self.journal_root / "model.json"
        if marker.is_file():
            diff = _first_difference(read_json(marker), asked)
            if diff:
                raise InputError(f"{self.journal_root} holds unfinished work of another model ({diff})")

    def _shard_attrs(self) -> dict:
        plan = json.loads(self.shard["plan"])
        return {
            "plan_id": plan["plan_id"],
            "shard_index": self.shard["index"],
            "shard_count": self.shard["count"],
        }

    def _start_journal(self, kind: str, name: str, params: dict, first: int = 0) -> Journal:
        """The journal of `kind/name`, started (with the model marker) if it is not yet."""
        marker = self.journal_root / "model.json"
        if not marker.is_file():
            make_dirs(self.journal_root)
            atomic_write_bytes(marker, json.dumps(self._model_attrs(), sort_keys=True).encode())
        journal = Journal(self.journal_root, kind, name, first)
        if not journal.exists():
            journal.start(params)
        return journal

    # --- commits -----------------------------------------------------------------------------
    def _rewrite(self, edit: Callable[[h5py.Group], None], new_bytes: int) -> None:
        """Apply `edit` to the model's group and commit it (`commit.py`): in place under an undo
        log when the store exists (cost O(new data)), else into a new file renamed into place.

        `new_bytes` bounds what `edit` adds (uncompressed). The free space must cover it before
        anything is written (HDF5 may crash on a full disk); on any error the store is put back
        byte for byte. Every new object gets its checksum.
        """
        exists = self.path.exists()
        commit = commit_in_place if exists else commit_new
        commit(self.path, lambda f: self._fill(f, edit, exists), new_bytes)

    def _fill(self, f: h5py.File, edit: Callable[[h5py.Group], None], exists: bool) -> None:
        if exists:
            checksums.check(f)
        else:
            f.attrs["schema_version"] = schema.SCHEMA_VERSION
            f.attrs["toolkit_version"] = self.toolkit_version
            f.attrs["created"] = _now()
            for key, value in self._model_attrs().items():
                f.attrs[key] = value
            f.attrs["model_config"] = json.dumps(self.model.config, sort_keys=True)
            f.attrs["library_versions"] = json.dumps(library_versions(), sort_keys=True)
            if self.shard is not None:
                for key, value in self._shard_attrs().items():
                    f.attrs[key] = value
                f.create_dataset(schema.PLAN, data=self.shard["plan"], dtype=STRING_DTYPE)
        legacy = checksums.unsealed(f) - {"/"} if exists else set()
        f.attrs["modified"] = _now()
        f.attrs["modified_with"] = json.dumps(library_versions(), sort_keys=True)
        edit(f.require_group(self.group))
        checksums.seal_new(f, legacy)

    def _stored_attrs(self, kind: str, name: str) -> dict | None:
        if not self.path.exists():
            return None
        with open_h5(self.path) as f:
            key = f"{self.group}/{kind}/{name}"
            if key not in f:
                return None
            return json.loads(f[key].attrs["params"])

    # --- what is stored or journaled already ---------------------------------------------------
    def _is_stored(self, kind: str, name: str, what: str, params: dict) -> bool:
        """Whether `kind/name` is stored; stored with other parameters is an error naming the
        first difference (a stored entry is never replaced)."""
        stored = self._stored_attrs(kind, name)
        if stored is None:
            return False
        legacy = {k: params[k] for k in ADDED_PARAMS if k in params and k not in stored}
        diff = _first_difference({**stored, **legacy}, params)
        if diff:
            raise InputError(
                f"{what} in {self.path} was recorded differently ({diff}); nothing was changed: rerun "
                "with the stored value, or record into another --store"
            )
        return True

    def _journal_status(self, journal: Journal, params: dict, what: str, has_work: Callable[[], bool]) -> str:
        """'new' (no journal, or one of other parameters with no work in it: discarded) or
        'partial'; a journal of other parameters that holds work is an error. `has_work` is
        asked only when the parameters differ."""
        if not journal.exists():
            return "new"
        diff = _first_difference(journal.params(), params)
        if diff and not has_work():
            journal.discard()  # started, nothing committed: a rejected run, nothing to lose
            return "new"
        if diff:
            raise InputError(
                f"unfinished {what} in {self.journal_root} differs ({diff}); rerun with the "
                "unfinished run's value to finish it, or use another --store"
            )
        return "partial"

    # --- probe sets --------------------------------------------------------------------------
    def probe_progress(self, src: str, tgt: str, params: dict) -> tuple[str, int]:
        """('done', n) if stored, ('partial', n_committed) if journaled, else ('new', 0).

        A probe set recorded with other parameters (template, data, seed, n, ...) is an error
        naming the first difference: nothing is overwritten.
        """
        name = schema.probe_set_name(src, tgt)
        if self._is_stored(schema.PROBES, name, f"probe set {name}", params):
            return "done", int(params["n_samples"])
        journal = Journal(self.journal_root, schema.PROBES, name)
        status = self._journal_status(
            journal, params, f"probe set {name}", lambda: bool(journal.block_paths())
        )
        return status, journal.n_committed() if status == "partial" else 0

    def probe_journal(self, src: str, tgt: str, params: dict) -> Journal:
        return self._start_journal(schema.PROBES, schema.probe_set_name(src, tgt), params)

    def finish_probe_set(self, src: str, tgt: str) -> None:
        """Merge a complete journaled probe set into the store and drop its journal."""
        name = schema.probe_set_name(src, tgt)
        journal = Journal(self.journal_root, schema.PROBES, name)
        params = journal.params()
        blocks = journal.block_paths()
        n = int(params["n_samples"])

        def edit(model_group: h5py.Group) -> None:
            group = model_group.require_group(schema.PROBES)
            if name in group:
                del group[name]
            g = self._create_probe_group(group, name, params)
            row = write_blocks(g, journal, blocks, 0)
            if row != n:
                raise InputError(f"journal of probe set {name} holds {row} samples, expected {n}")
            if "top_k" in params:  # top-activating contexts (schema 3, store/contexts.py)
                write_contexts(g, top_state(journal_top(journal, blocks, params["top_k"])), unit="sample")

        self._rewrite(edit, sum(p.stat().st_size for p in blocks))
        journal.discard()

    def _create_probe_group(self, group: h5py.Group, name: str, params: dict) -> h5py.Group:
        """The empty group of probe set `name`: its attributes and full-size datasets."""
        n = int(params["n_samples"])
        g = group.create_group(name)
        g.attrs["params"] = json.dumps(params, sort_keys=True)
        for key in ("src", "tgt", "template", "data_source", "data_sha256", "seed"):
            if key in params:
                g.attrs[key] = params[key]
        g.attrs["created"] = _now()
        for stat, kwargs in probe_dataset_layout(params, n, self.model.n_layers, self.model.d_mlp).items():
            g.create_dataset(stat, **kwargs)
        return g

    # --- units of a work plan ----------------------------------------------------------------
    # In a shard store each unit has its own journal and commit (`finish_unit`). In any other
    # store the units of a probe set are recorded in plan order into the probe set's journal
    # (the very blocks a whole-set recording writes), committed once, after its last unit.
    def unit_progress(self, src: str, tgt: str, params: dict, rows: tuple[int, int]) -> tuple[str, int]:
        """Like `probe_progress`, for the samples `rows` of a probe set (`n` samples in the unit
        already recorded: 'done' when stored, or journaled and not the probe set's last unit)."""
        if self.shard is None:
            return self._set_unit_progress(src, tgt, params, rows)
        name = schema.probe_set_name(src, tgt)
        if self._is_stored(schema.PROBES, name, f"probe set {name}", params):
            if list(rows) in self._stored_units(name):
                return "done", rows[1] - rows[0]
        journal = Journal(self.journal_root, schema.PROBES, unit_name(name, rows))
        what = f"unit {unit_name(name, rows)}"
        status = self._journal_status(journal, params, what, lambda: bool(journal.block_paths()))
        return status, journal.n_committed() if status == "partial" else 0

    def unit_journal(self, src: str, tgt: str, params: dict, rows: tuple[int, int]) -> Journal:
        if self.shard is None:
            return self.probe_journal(src, tgt, params)
        name = unit_name(schema.probe_set_name(src, tgt), rows)
        return self._start_journal(schema.PROBES, name, params, first=rows[0])

    def _set_unit_progress(self, src: str, tgt: str, params: dict, rows: tuple[int, int]) -> tuple[str, int]:
        status, done = self.probe_progress(src, tgt, params)
        size = rows[1] - rows[0]
        if status == "done":
            return "done", size
        if done < rows[0]:
            name = unit_name(schema.probe_set_name(src, tgt), rows)
            raise InputError(
                f"unit {name} of {self.path}: the journal holds samples 0-{done} only; "
                "a probe set's units are recorded in plan order"
            )
        done = min(done - rows[0], size)
        if done == size and rows[1] < int(params["n_samples"]):
            return "done", size  # journaled; committed with the probe set's last unit
        return ("new" if done == 0 else "partial"), done

    def _stored_units(self, name: str) -> list[list[int]]:
        with open_h5(self.path) as f:
            g = f[f"{self.group}/{schema.PROBES}/{name}"]
            return json.loads(g.attrs.get("units", "[]"))

    def finish_unit(self, src: str, tgt: str, rows: tuple[int, int]) -> None:
        """The journaled samples `rows` of a probe set recorded. A shard store commits them: the
        probe set's group holds full-size datasets, of which only the units recorded here are
        written (the chunks of other rows stay unallocated); `units` lists them. Any other
        store commits the whole probe set after its last unit (`finish_probe_set`)."""
        name = schema.probe_set_name(src, tgt)
        if self.shard is None:
            n = int(Journal(self.journal_root, schema.PROBES, name).params()["n_samples"])
            if rows[1] == n:
                self.finish_probe_set(src, tgt)
            return
        journal = Journal(self.journal_root, schema.PROBES, unit_name(name, rows), first=rows[0])
        params, blocks = journal.params(), journal.block_paths()

        def edit(model_group: h5py.Group) -> None:
            group = model_group.require_group(schema.PROBES)
            g = group[name] if name in group else self._create_probe_group(group, name, params)
            got = write_blocks(g, journal, blocks, rows[0]) - rows[0]
            if got != rows[1] - rows[0]:
                raise InputError(f"journal of unit {unit_name(name, rows)} holds {got} samples")
            units = sorted(json.loads(g.attrs.get("units", "[]")) + [list(rows)])
            g.attrs["units"] = json.dumps(units)
            if "top_k" in params:  # the shard's top-k: its units' so far and this one's, merged
                parts = [journal_top(journal, blocks, params["top_k"])]
                if CONTEXTS in g:
                    parts.append(stored_top(g))
                    del g[CONTEXTS]
                write_contexts(g, top_state(merge_top(parts, params["top_k"])), unit="sample")
            for obj in (g, *(g[k] for k in g)):  # rewritten: their checksums renewed
                if checksums.covers_data(obj) or obj is g:
                    checksums.seal(obj)

        self._rewrite(edit, sum(p.stat().st_size for p in blocks))
        journal.discard()

    # --- corpora -----------------------------------------------------------------------------
    def corpus_progress(self, lang: str, params: dict) -> tuple[str, dict | None]:
        if self._is_stored(schema.CORPORA, lang, f"corpus {lang}", params):
            return "done", None
        journal = Journal(self.journal_root, schema.CORPORA, lang)
        state = journal.load_state() if journal.exists() else None
        status = self._journal_status(journal, params, f"corpus {lang}", lambda: state is not None)
        return status, state if status == "partial" else None

    def corpus_journal(self, lang: str, params: dict) -> Journal:
        return self._start_journal(schema.CORPORA, lang, params)

    def finish_corpus(self, lang: str) -> None:
        journal = Journal(self.journal_root, schema.CORPORA, lang)
        params, state = journal.params(), journal.load_state()
        if state is None:
            raise InputError(f"corpus {lang} has no committed statistics to merge")

        def edit(model_group: h5py.Group) -> None:
            group = model_group.require_group(schema.CORPORA)
            if lang in group:
                del group[lang]
            g = group.create_group(lang)
            g.attrs["params"] = json.dumps(params, sort_keys=True)
            for key in ("lang", "split", "data_source", "data_sha256"):
                if key in params:
                    g.attrs[key] = params[key]
            g.attrs["created"] = _now()
            g.create_dataset(
                "fire_count",
                data=state["fire_count"],
                fletcher32=True,
                compression=schema.COMPRESSION,
                compression_opts=schema.COMPRESSION_LEVEL,
            )
            g.create_dataset(
                "value_sum",
                data=state["value_sum"],
                fletcher32=True,
                compression=schema.COMPRESSION,
                compression_opts=schema.COMPRESSION_LEVEL,
            )
            g.create_dataset("n_tokens", data=np.int64(state["n_tokens"]))
            g.create_dataset("n_sentences", data=np.int64(state["n_sentences"]))
            if "top_value" in state:  # top-activating contexts (schema 3, store/contexts.py)
                write_contexts(g, state, unit="sentence")

        self._rewrite(edit, sum(np.asarray(a).nbytes for a in state.values()))
        journal.discard()

    # --- anything else (neuron sets, analysis results) ---------------------------------------
    def edit(self, kind: str, fill: Callable[[h5py.Group], None], new_bytes: int | None = None) -> None:
        """Let `fill` add or replace entries of group `kind` (e.g. 'sets'), committed in place.
        `new_bytes` bounds what it adds (default: one byte per neuron, eight packed sets)."""
        if new_bytes is None:
            new_bytes = self.model.n_layers * self.model.d_mlp
        self._rewrite(lambda model_group: fill(model_group.require_group(kind)), new_bytes)

    def put_sets(self, sets: Mapping[str, NeuronSet]) -> None:
        """Write (or replace) named neuron sets under `sets/`, in one commit (layout in
        docs/sets.md); read them back with `Store.neuron_set(name)`."""
        self.put(sets=sets)

    def put_json(self, kind: str, name: str, payload: dict) -> None:
        """Store a JSON document (an analysis result) as a UTF-8 string dataset `kind/name`."""
        self.put(documents={kind: {name: payload}})

    def put_result(self, result, sets: Mapping[str, NeuronSet] | None = None) -> None:
        """A typed result (`neuronoverlap.results`) as results/`result.key`, with the neuron
        `sets` it made, in one commit; read it back with `Store.result(result.key)`."""
        self.put(sets=sets, documents={schema.RESULTS: {result.key: result.to_dict()}})

    def put(
        self,
        sets: Mapping[str, NeuronSet] | None = None,
        documents: Mapping[str, Mapping[str, dict]] | None = None,
    ) -> None:
        """Neuron sets and JSON documents (`documents[kind][name]`) added or replaced in ONE
        commit: either all of them are stored, or (a failure, a kill) none."""
        sets, documents = dict(sets or {}), {k: dict(v) for k, v in (documents or {}).items()}
        shape = (self.model.n_layers, self.model.d_mlp)
        for name, neurons in sets.items():
            if "/" in name or not name:
                raise InputError(f"a neuron-set name cannot be empty or contain '/': {name!r}")
            if neurons.shape != shape:
                raise InputError(
                    f"set {name!r} has model shape {neurons.shape}, the store's model is {shape}"
                )
        texts = {
            kind: {
                name: json.dumps(doc, sort_keys=True, ensure_ascii=False, default=_plain)
                for name, doc in docs.items()
            }
            for kind, docs in documents.items()
        }

        def fill(model_group: h5py.Group) -> None:
            if sets:
                group = model_group.require_group(schema.SETS)
                for name, neurons in sets.items():
                    if name in group:
                        del group[name]
                    write_neuron_set(neurons, group, name)
            versions = json.dumps(library_versions(), sort_keys=True)
            for kind, named in texts.items():
                group = model_group.require_group(kind)
                for name, text in named.items():
                    if name in group:
                        del group[name]
                    group.create_dataset(name, data=text, dtype=STRING_DTYPE)
                    group[name].attrs["created"] = _now()
                    group[name].attrs["library_versions"] = versions

        new_bytes = len(sets) * self.model.n_layers * self.model.d_mlp + sum(
            len(t.encode()) for named in texts.values() for t in named.values()
        )
        self._rewrite(fill, max(new_bytes, 1))


def check_writable(path: Path) -> None:
    """Refuse to write into a store of another schema version (checked before any work)."""
    if not path.exists():
        return
    with open_h5(path) as f:
        version = f.attrs.get("schema_version")
    if version is not None and int(version) != schema.SCHEMA_VERSION:
        hint = (
            f"; `neuronoverlap store-upgrade {path}` converts it"
            if int(version) in schema.READABLE_VERSIONS
            else ""
        )
        raise InputError(
            f"{path} has store schema {int(version)}; this toolkit writes schema "
            f"{schema.SCHEMA_VERSION} only and leaves the store as it is{hint}"
        )


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
