"""Reading a store: lazy slices, with damage reported as one-line errors.

    store = Store("store/run.h5")
    store.probes("zh-ja").layer(12)                 # [n_samples, d_mlp] mean activations
    store.corpus("he").activation_probability()     # [n_layers, d_mlp]
    with Store("store/run.h5") as store:            # one read handle for many reads
        ...

A store can also be read with plain h5py from the schema in docs/store.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
from jaxtyping import Float, Int

from neuronoverlap.errors import InputError
from neuronoverlap.sets.core import NeuronSet
from neuronoverlap.store import checksums, counts, schema, undo
from neuronoverlap.store.neuron_sets import read_neuron_set
from neuronoverlap.store.paths import resolve_store

#: HDF5's message for a file shorter than its superblock records.
_TRUNCATED = re.compile(r"truncated file: eof = (?P<eof>\d+).*stored_eof = (?P<stored>\d+)")

#: How long a reader waits for a commit in progress (a commit of a large probe set: seconds).
COMMIT_WAIT_S = 600.0


def _shared_lock(fh, path: Path) -> None:
    """A shared flock on the store file: a commit in place holds it exclusively, and has its undo
    log beside the store all that time, so the reader waits for it. Held exclusively with no undo
    log, the store is open for writing by something else (plain h5py, maybe this very process):
    read as before, without the lock."""
    deadline = time.monotonic() + COMMIT_WAIT_S
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if undo.existing_undo(path) is None:
                return
            if time.monotonic() > deadline:
                raise InputError(
                    f"{path} has been committing for {COMMIT_WAIT_S:.0f} s; try again later"
                ) from None
            time.sleep(0.05)


@contextmanager
def open_h5(path: str | Path) -> Iterator[h5py.File]:
    """Open a store read-only; a missing, truncated or non-HDF5 file is an `InputError`."""
    path = resolve_store(path, "store")  # its undo log lies beside the file a link names
    if not path.is_file():
        raise InputError(
            f"no store at {path}: nothing is recorded there yet (`neuronoverlap demo` writes "
            f"store/demo.h5; `neuronoverlap probe ... --store {path}` records one)"
        )
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot read the store {path}: {exc.strerror or exc}") from None
    with fh:
        _shared_lock(fh, path)
        try:
            log = undo.existing_undo(path)
            parsed = undo.read_undo(log) if log is not None else None
            if parsed:
                undo.check_length(path, fh, *parsed)
            # An undo log under the shared lock: a commit was interrupted (kill -9, power
            # loss); what it wrote is not committed, so read the store as it was before it.
            f = h5py.File(undo.OldView(fh, *parsed), "r") if parsed else h5py.File(path, "r")
        except InputError:
            raise
        except (OSError, RuntimeError, ValueError) as exc:  # what h5py raises for a damaged file
            cut = _TRUNCATED.search(str(exc))
            if cut:  # HDF5 compares the file's end with the end its superblock recorded
                raise undo.truncated_error(path, int(cut["eof"]), int(cut["stored"])) from None
            reason = str(exc).split("(")[-1].rstrip(")") if "(" in str(exc) else str(exc)
            raise InputError(
                f"{path} is not a readable HDF5 store (truncated or damaged: {reason})"
            ) from None
        try:
            yield f
        finally:
            f.close()


def shard_units(path: str | Path) -> tuple[int, int, list[str]] | None:
    """(index, count, units held as 'de-fr[0:64]') when `path` is one shard of a work plan,
    else None (a whole store, or a merged one)."""
    with open_h5(path) as f:
        if "shard_index" not in f.attrs:
            return None
        index, count = int(f.attrs["shard_index"]), int(f.attrs["shard_count"])
        model = schema.model_group(str(f.attrs["model_name"]))
        probes = f.get(f"{model}/{schema.PROBES}")
        units = [
            f"{name}[{a}:{b}]"
            for name in (sorted(probes) if probes is not None else [])
            for a, b in json.loads(probes[name].attrs.get("units", "[]"))
        ]
    return index, count, units


def _read(dataset: h5py.Dataset, selection=()) -> np.ndarray:
    """`dataset[selection]`, checked: fletcher32 per chunk, else the dataset's sha256 (such
    datasets, strings and scalars, are small and read whole)."""
    try:
        if not checksums.covers_data(dataset) or checksums.ATTR not in dataset.attrs:
            return dataset[selection]
        data = dataset[()]
        checksums.check(dataset, data)
        return data if selection == () else data[selection]
    except OSError as exc:
        raise InputError(
            f"{dataset.file.filename}: dataset {dataset.name} is damaged ({str(exc).splitlines()[0]})"
        ) from None


def checked_attrs(node: h5py.Group | h5py.Dataset) -> h5py.AttributeManager:
    """The attributes of `node`, checked against its sha256 (when it has one)."""
    try:
        checksums.check(node)
    except OSError as exc:
        raise InputError(
            f"{node.file.filename}: {node.name} is damaged ({str(exc).splitlines()[0]})"
        ) from None
    return node.attrs


def _first_index(selection):
    if isinstance(selection, tuple):
        selection = selection[0] if selection else slice(None)
    return slice(None) if selection is Ellipsis else selection


def _stat_dataset(group: h5py.Group, statistic: str) -> h5py.Dataset:
    if statistic not in schema.STATISTICS:
        raise InputError(f"unknown statistic {statistic!r}; use {' or '.join(map(repr, schema.STATISTICS))}")
    if statistic == "mean":
        return group["mean"]
    return group["prob"] if "prob" in group else group["fires"]  # schema 1 / schema 2 (counts)


def read_statistic(group: h5py.Group, statistic: str, selection=()) -> np.ndarray:
    """`statistic` ('mean' or 'probability') of a probe set's group, float32 whatever is stored: a
    float16 `mean` is widened, schema 2's `fires` become float32(fires / tokens)."""
    ds = _stat_dataset(group, statistic)
    data = _read(ds, selection)
    if ds.name.endswith("/fires"):
        return counts.probability(data, _read(group["tokens"])[_first_index(selection)])
    return data.astype(np.float32, copy=False)


class LazyDataset:
    """Sliced like a numpy array; every slice opens the store, reads, and closes it."""

    def __init__(self, store: Store, key: str, statistic: str, shape: tuple[int, ...]):
        self.store, self.key, self.statistic, self.shape = store, key, statistic, tuple(shape)

    def __getitem__(self, selection) -> np.ndarray:
        with self.store._file() as f:
            return read_statistic(f[self.key], self.statistic, selection)

    def __len__(self) -> int:
        return self.shape[0]


class ProbeSetView:
    """One direction-specific probe set, read lazily."""

    def __init__(self, store: Store, src: str, tgt: str):
        self.store, self.src, self.tgt = store, src, tgt
        self.name = schema.probe_set_name(src, tgt)
        self.key = f"{store.group}/{schema.PROBES}/{self.name}"

    def __repr__(self) -> str:
        return f"<ProbeSetView {self.name} of {self.store.path}: {self.n_samples} samples>"

    @property
    def params(self) -> dict:
        with self.store._file() as f:
            return json.loads(checked_attrs(f[self.key])["params"])

    @property
    def n_samples(self) -> int:
        with self.store._file() as f:
            return int(f[self.key]["tokens"].shape[0])

    def layer(self, layer: int, statistic: str = "mean") -> Float[np.ndarray, "sample neuron"]:
        """All samples of one layer: `statistic` is 'mean' (activation value) or 'probability'."""
        self.store._check_layer(layer)
        with self.store._file() as f:
            return read_statistic(f[self.key], statistic, (slice(None), layer, slice(None)))

    def array(self, statistic: str = "mean") -> Float[np.ndarray, "sample layer neuron"]:
        with self.store._file() as f:
            return read_statistic(f[self.key], statistic)

    def lazy(self, statistic: str = "probability") -> LazyDataset:
        """An array-like over the whole dataset that reads only the slices asked for."""
        with self.store._file() as f:
            shape = _stat_dataset(f[self.key], statistic).shape
        return LazyDataset(self.store, self.key, statistic, shape)

    def tokens(self) -> Int[np.ndarray, " sample"]:
        with self.store._file() as f:
            return _read(f[self.key]["tokens"])

    def strings(self, field: str) -> list[str]:
        """'prompts', 'generations', 'source_words' or 'target_words'."""
        with self.store._file() as f:
            return [s.decode() if isinstance(s, bytes) else s for s in _read(f[self.key][field])]

    def pooled_probability(self) -> Float[np.ndarray, "layer neuron"]:
        """Token-weighted activation probability over all samples (fires / tokens)."""
        tokens = self.tokens().astype(np.float64)
        with self.store._file() as f:
            ds = _stat_dataset(f[self.key], "probability")
            fires = np.zeros(ds.shape[1:], dtype=np.float64)
            for start in range(0, ds.shape[0], schema.CHUNK_ROWS):
                rows = _read(ds, slice(start, start + schema.CHUNK_ROWS)).astype(np.float64)
                if ds.name.endswith("/fires"):
                    fires += rows.sum(0)
                else:  # schema 1: probabilities
                    fires += np.einsum("sln,s->ln", rows, tokens[start : start + schema.CHUNK_ROWS])
        return fires / max(tokens.sum(), 1.0)

    def to_xarray(self, layers=None, statistics=schema.STATISTICS):
        """An xarray Dataset over (sample, layer, neuron), read lazily: `frames.probe_set_to_xarray`."""
        from neuronoverlap.frames import probe_set_to_xarray

        return probe_set_to_xarray(self, layers, statistics)


class CorpusView:
    """Language-level statistics over a monolingual corpus."""

    def __init__(self, store: Store, lang: str):
        self.store, self.lang = store, lang
        self.key = f"{store.group}/{schema.CORPORA}/{lang}"

    def __repr__(self) -> str:
        return f"<CorpusView {self.lang} of {self.store.path}: {self.n_tokens} tokens>"

    def _get(self, name: str) -> np.ndarray:
        with self.store._file() as f:
            return _read(f[self.key][name])

    @property
    def params(self) -> dict:
        with self.store._file() as f:
            return json.loads(checked_attrs(f[self.key])["params"])

    def fire_count(self) -> Int[np.ndarray, "layer neuron"]:
        return self._get("fire_count")

    def value_sum(self) -> Float[np.ndarray, "layer neuron"]:
        return self._get("value_sum")

    @property
    def n_tokens(self) -> int:
        return int(self._get("n_tokens"))

    def activation_probability(self) -> Float[np.ndarray, "layer neuron"]:
        return self.fire_count() / max(self.n_tokens, 1)

    def mean_activation(self) -> Float[np.ndarray, "layer neuron"]:
        return self.value_sum() / max(self.n_tokens, 1)

    def to_xarray(self):
        """An xarray Dataset over (layer, neuron): `frames.corpus_to_xarray`."""
        from neuronoverlap.frames import corpus_to_xarray

        return corpus_to_xarray(self)


class Store:
    """Read access to a store file. Cheap to create; every read opens the file briefly, unless
    the store is used as a context manager (`with Store(path) as store:`), which keeps one read
    handle (and the shared lock: writers wait) until the block ends.

    Args:
        path: the store file (written by `probes.open_writer` or the `neuronoverlap` commands).

    A missing, damaged or non-store file, or one of a newer schema, is an `InputError`.

    Example: record a probe set and a corpus with the tiny test model, then read them.

    >>> import tempfile
    >>> from pathlib import Path
    >>> from neuronoverlap.models import StopRule, load_model
    >>> from neuronoverlap.probes import flores_sentences, open_writer, record_corpus
    >>> from neuronoverlap.probes import record_probe_set, translation_probe_sets
    >>> model = load_model("tiny-llama")
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "run.h5"
    >>> de_en, en_de = translation_probe_sets("de", "en", 3, seed=0)
    >>> sentences, params = flores_sentences("de", 3)
    >>> with open_writer(path, model) as writer:
    ...     record_probe_set(model, writer, de_en, stop=StopRule(max_new_tokens=3), progress=False)
    ...     record_corpus(model, writer, "de", sentences, params, progress=False)
    'recorded'
    'recorded'
    >>> with Store(path) as store:
    ...     store.model_name, store.n_layers, store.d_mlp
    ...     store.probe_sets(), store.corpora()
    ...     store.probes("de-en").n_samples == store.probes("de", "en").n_samples == 3
    ('tiny-llama', 4, 256)
    (['de-en'], ['de'])
    True
    >>> folder.cleanup()
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._session: contextlib.ExitStack | None = None
        self._handle: h5py.File | None = None
        self._depth = 0
        with open_h5(self.path) as f:
            if "model_name" not in f.attrs or "schema_version" not in f.attrs:
                raise InputError(f"{self.path} is an HDF5 file but not a neuronoverlap store")
            version = int(f.attrs["schema_version"])
            if version not in schema.READABLE_VERSIONS:
                raise InputError(
                    f"{self.path} has store schema {version}; this toolkit reads schemas 1 to "
                    f"{schema.SCHEMA_VERSION}: upgrade neuronoverlap"
                )
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in checked_attrs(f).items()}
        if schema.VIEW_SOURCES in self.attrs:  # a `merge --link` view: its shards must be as they were
            from neuronoverlap.store.merge import check_view

            check_view(self.path, self.attrs[schema.VIEW_SOURCES])
        self.model_name = str(self.attrs["model_name"])
        self.fingerprint = str(self.attrs["model_fingerprint"])
        self.n_layers = int(self.attrs["n_layers"])
        self.d_mlp = int(self.attrs["d_mlp"])
        self.group = schema.model_group(self.model_name)

    def __enter__(self) -> Store:
        """Open one read handle for the block (nested blocks share it; the outermost closes it)."""
        if self._session is None:
            session = contextlib.ExitStack()
            self._handle = session.enter_context(open_h5(self.path))
            self._session = session
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth > 0:
            return
        session, self._session, self._handle = self._session, None, None
        if session is not None:
            session.close()

    def __repr__(self) -> str:
        return (
            f"<Store {self.path}: {self.model_name}, {self.n_layers}x{self.d_mlp}, "
            f"{len(self.probe_sets())} probe sets, {len(self.corpora())} corpora, "
            f"{len(self.neuron_set_names())} neuron sets>"
        )

    @contextmanager
    def _file(self) -> Iterator[h5py.File]:
        if self._handle is not None:
            yield self._handle
            return
        with open_h5(self.path) as f:
            yield f

    def _check_layer(self, layer: int) -> None:
        if not 0 <= layer < self.n_layers:
            raise InputError(f"layer {layer} out of range 0..{self.n_layers - 1} for {self.model_name}")

    def _names(self, kind: str) -> list[str]:
        with self._file() as f:
            key = f"{self.group}/{kind}"
            return sorted(f[key]) if key in f else []

    def probe_sets(self) -> list[str]:
        return self._names(schema.PROBES)

    def corpora(self) -> list[str]:
        return self._names(schema.CORPORA)

    def has_probes(self, probe_set: str | tuple[str, str], tgt: str | None = None) -> bool:
        """Whether the probe set is stored: `has_probes("zh-ja")`, `("zh", "ja")` or `("zh", "ja")` apart."""
        return schema.probe_set_name(*schema.probe_set_key(probe_set, tgt)) in self.probe_sets()

    def probes(self, probe_set: str | tuple[str, str], tgt: str | None = None) -> ProbeSetView:
        """The probe set translating src -> tgt: `probes("zh-ja")`, `probes(("zh", "ja"))` or
        `probes("zh", "ja")`.

        Args:
            probe_set, tgt: the probe set's name, a (src, tgt) pair, or src with `tgt`.

        Returns:
            A lazy `ProbeSetView`; a missing probe set, or one only part of which is in this
            shard, is an `InputError`.

        >>> view = Store(tiny_store).probes("de", "en")   # tiny_store: recorded as in `Store`
        >>> view.layer(2).shape                 # [sample, neuron] mean activations
        (3, 256)
        >>> view.strings("source_words")
        ['anteil', 'tragen', 'thai']
        """
        src, tgt = schema.probe_set_key(probe_set, tgt)
        name = schema.probe_set_name(src, tgt)
        if name not in self.probe_sets():
            have = ", ".join(self.probe_sets()) or "none"
            raise InputError(f"{self.path} has no probe set {name} (it has: {have})")
        view = ProbeSetView(self, src, tgt)
        with self._file() as f:
            units = checked_attrs(f[view.key]).get("units")
            n = int(f[view.key]["tokens"].shape[0])
        covered = sum(b - a for a, b in json.loads(units)) if units is not None else n
        if covered != n:  # a shard's part: the other samples are in other shards
            raise InputError(
                f"{self.path} is a shard: it holds samples {json.loads(units)} of probe set {name} only; "
                "`neuronoverlap merge` its shards into a store first"
            )
        return view

    def corpus(self, lang: str) -> CorpusView:
        """The corpus statistics of `lang`.

        Args:
            lang: a language code, e.g. "de".

        Returns:
            A `CorpusView`; a language without corpus statistics is an `InputError`.

        >>> view = Store(tiny_store).corpus("de")   # tiny_store: recorded as in `Store`
        >>> view.activation_probability().shape     # [layer, neuron]
        (4, 256)
        >>> view.n_tokens > 0
        True
        """
        if lang not in self.corpora():
            have = ", ".join(self.corpora()) or "none"
            raise InputError(f"{self.path} has no corpus statistics for {lang!r} (it has: {have})")
        return CorpusView(self, lang)

    def neuron(self, layer: int, neuron: int):
        """One neuron: its top-activating contexts (`neurons.NeuronView`, issue 29)."""
        from neuronoverlap.neurons.contexts import NeuronView

        return NeuronView(self, layer, neuron)

    def neuron_set_names(self) -> list[str]:
        """Names of the neuron sets saved with `StoreWriter.put_sets`."""
        return self._names(schema.SETS)

    def neuron_set(self, name: str) -> NeuronSet:
        """A neuron set saved with `StoreWriter.put_sets` (checked against its checksum)."""
        names = self.neuron_set_names()
        if name not in names:
            raise InputError(f"{self.path} has no neuron set {name!r} (it has: {', '.join(names) or 'none'})")
        with self.h5_group(schema.SETS, name) as node:
            return read_neuron_set(node)

    def group_names(self, kind: str) -> list[str]:
        """Names under any kind of group (e.g. 'sets', 'results')."""
        return self._names(kind)

    def get_json(self, kind: str, name: str) -> dict:
        """A JSON document stored with `StoreWriter.put_json`."""
        with self.h5_group(kind, name) as node:
            raw = _read(node, ())
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)

    def result(self, name: str):
        """The typed result stored as results/NAME (`neuronoverlap.results`: a `BridgeSelection`,
        an `EvaluationResult`, ...); a document of no known kind is an `InputError`."""
        from neuronoverlap.results import read

        return read(name, self.get_json(schema.RESULTS, name))

    def results(self, kind: str | None = None) -> dict:
        """Every typed result in the results group (of `kind` only, when given), by name;
        documents of no known kind are left out (`get_json` reads them)."""
        from neuronoverlap.results import kind_of, read

        found = {}
        for name in self.group_names(schema.RESULTS):
            document = self.get_json(schema.RESULTS, name)
            of = kind_of(name, document)
            if of is not None and (kind is None or of == kind):
                found[name] = read(name, document)
        return found

    @contextmanager
    def h5_group(self, kind: str, name: str) -> Iterator[h5py.Group]:
        """Raw read access to `kind/name` of the model's group (for sets and results)."""
        with self._file() as f:
            key = f"{self.group}/{kind}/{name}"
            if key not in f:
                raise InputError(f"{self.path} has no {kind} entry {name!r}")
            node = f[key]
            checked_attrs(node)
            yield node
