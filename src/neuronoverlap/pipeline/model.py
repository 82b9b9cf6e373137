"""Which model a step runs: named, or the model that wrote the store; loaded once, on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuronoverlap.errors import InputError

#: Model names the toolkit loads by name (anything else needs its checkpoint directory).
NAMED_MODELS = ("embedded", "tiny-llama", "tiny-mistral")


def spec_of_name(name: str) -> str | None:
    """The spec that loads a model by its name ('gemma-3-270m' -> 'embedded'); None for a model
    only its checkpoint directory loads."""
    from neuronoverlap.models.embedded import EMBEDDED_NAME

    if name == EMBEDDED_NAME:
        return "embedded"
    return name if name in NAMED_MODELS else None


def model_of_store(store: str | Path) -> str | None:
    """The spec that loads the model which wrote `store` (None when there is no store yet)."""
    path = Path(store)
    if not path.is_file():
        return None
    from neuronoverlap.store import Store

    name = Store(path).model_name
    spec = spec_of_name(name)
    if spec is None:
        raise InputError(f"{path} was written by {name!r}: pass --model with its checkpoint directory")
    return spec


@dataclass
class ModelSource:
    """A model to load when a step first needs it, shared by the steps of one job.

    `spec`: 'embedded', 'tiny-llama', 'tiny-mistral' or a checkpoint directory; None means the
    model that wrote the store, else 'embedded'. `explicit` says whether the user named it (a
    step that would start recording into a store that lacks data needs that consent)."""

    spec: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    _model: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, model: Any) -> ModelSource:
        """A `ModelSource` from a loaded model, a spec string, a source, or None."""
        if isinstance(model, ModelSource):
            return model
        if model is None or isinstance(model, (str, Path)):
            return cls(None if model is None else str(model))
        name = getattr(model, "name", None)
        source = cls(None if name is None else spec_of_name(name) or name)  # a spec Ray workers load
        if hasattr(model, "dtype") and hasattr(model, "device"):  # a loaded NeuronModel: its precision
            source.dtype = str(model.dtype).removeprefix("torch.")
            source.device = str(model.device)
        source._model = model
        return source

    @property
    def explicit(self) -> bool:
        return self.spec is not None

    def resolve(self, store: str | Path | None = None) -> str:
        """The spec to load: the one given, else the store's model, else 'embedded'."""
        if self.spec is not None:
            return self.spec
        return (model_of_store(store) if store is not None else None) or "embedded"

    def load(self, store: str | Path | None = None):
        """The loaded `NeuronModel` (loaded on the first call only)."""
        if self._model is None:
            from neuronoverlap.models import load_model

            self._model = load_model(self.resolve(store), device=self.device, dtype=self.dtype)
        return self._model
