"""Shared fixtures: tiny models (seconds) and the embedded Gemma-3-270M (slow, loaded once)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_llama():
    from neuronoverlap.models import load_model

    return load_model("tiny-llama")


@pytest.fixture(scope="session")
def tiny_mistral():
    from neuronoverlap.models import load_model

    return load_model("tiny-mistral")


@pytest.fixture(scope="session")
def gemma():
    from neuronoverlap.models import load_model

    return load_model("embedded")
