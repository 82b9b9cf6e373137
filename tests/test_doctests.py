"""The runnable examples in the docstrings of the entry points a notebook touches.

Examples that read a store get `tiny_store`: the store the `Store` docstring records (tiny-llama,
probe set de-en of 3 samples, corpus de of 3 sentences), built once here.
"""

from __future__ import annotations

import doctest
import importlib
import io

import pytest

#: module -> the objects (dotted inside the module) that must carry a runnable example.
EXAMPLES = {
    "neuronoverlap.models.loading": ["load_model"],
    "neuronoverlap.store.reader": ["Store", "Store.probes", "Store.corpus"],
    "neuronoverlap.sets.core": ["NeuronSet"],
    "neuronoverlap.hsic.estimators": ["hsic"],
    "neuronoverlap.pipeline.recording": ["record_probes"],
    "neuronoverlap.pipeline.bridge": ["choose_bridge"],
    "neuronoverlap.frames": [
        "probe_set_to_xarray",
        "corpus_to_xarray",
        "reports_frame",
        "neurons_frame",
        "neuron_set_frame",
    ],
    "neuronoverlap.interventions.hooks": ["intervene"],
}


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory, tiny_llama):
    from neuronoverlap.models import StopRule
    from neuronoverlap.probes import (
        flores_sentences,
        open_writer,
        record_corpus,
        record_probe_set,
        translation_probe_sets,
    )

    path = tmp_path_factory.mktemp("doctest") / "run.h5"
    de_en, _ = translation_probe_sets("de", "en", 3, seed=0)
    sentences, params = flores_sentences("de", 3)
    with open_writer(path, tiny_llama) as writer:
        record_probe_set(tiny_llama, writer, de_en, stop=StopRule(max_new_tokens=3), progress=False)
        record_corpus(tiny_llama, writer, "de", sentences, params, progress=False)
    return str(path)


@pytest.mark.parametrize("module_name", sorted(EXAMPLES))
def test_docstring_examples_run(module_name, tiny_store):
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder().find(module, extraglobs={"tiny_store": tiny_store})
    with_examples = {t.name.removeprefix(module_name + ".") for t in tests if t.examples}
    missing = sorted(set(EXAMPLES[module_name]) - with_examples)
    assert not missing, f"no runnable example in {module_name}: {missing}"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = io.StringIO()
    for test in tests:
        runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, out.getvalue()
