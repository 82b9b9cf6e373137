"""The HDF5 activation store: documented schema (docs/store.md), crash-safe writer, lazy reader."""

from neuronoverlap.store.reader import CorpusView, ProbeSetView, Store, open_h5
from neuronoverlap.store.writer import ModelInfo, StoreWriter

__all__ = ["CorpusView", "ModelInfo", "ProbeSetView", "Store", "StoreWriter", "open_h5"]
