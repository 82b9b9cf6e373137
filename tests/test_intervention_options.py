"""The intervention experiments' options travel whole (issue 24's rule): one `InterventionOptions`,
checked once with the command line's bounds, passed whole to the experiments, recorded whole in
their result and printed from it; a result stored before (format 1, no options) still loads."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import fields, replace

import pytest

from neuronoverlap.cli.checks import check_options
from neuronoverlap.cli.intervene import intervention_options, render
from neuronoverlap.cli.main import build_parser
from neuronoverlap.errors import InputError
from neuronoverlap.interventions.result import InterventionResult, load_results
from neuronoverlap.options import InterventionOptions, NullOptions, OptionError
from neuronoverlap.pipeline.interventions import intervention_bli, intervention_perplexity
from neuronoverlap.results import read

BASE = InterventionOptions(null=NullOptions(exact_sets=1, attribution_sets=5, n_bands=2, n_resamples=20))

#: One change per field ("null.x": a field of the null); a new field needs a line here (the test
#: checks that). Each change is a dict of fields, as some fields only mean something together.
CHANGES = {
    "kind": {"kind": "mean"},
    "factor": {"kind": "scale", "factor": 0.5},
    "of": {"kind": "mean", "of": "fr"},
    "statistic": {"kind": "value", "statistic": "probability"},
    "batch_size": {"batch_size": 3},
    "null.exact_sets": {"exact_sets": 2},
    "null.attribution_sets": {"attribution_sets": 7},
    "null.n_bands": {"n_bands": 1},
    "null.seed": {"seed": 4},
    "null.alternative": {"alternative": "two-sided"},
    "null.confidence": {"confidence": 0.8},
    "null.n_resamples": {"n_resamples": 30},
}


def changed(name: str) -> InterventionOptions:
    if name.startswith("null."):
        return replace(BASE, null=replace(BASE.null, **CHANGES[name]))
    return replace(BASE, **CHANGES[name])


@pytest.fixture
def store(tiny_store_template, tmp_path):
    path = tmp_path / "run.h5"
    shutil.copy(tiny_store_template, path)
    return path


def test_every_option_has_a_change():
    named = {f.name for f in fields(InterventionOptions)} - {"null"}
    assert set(CHANGES) == named | {f"null.{f.name}" for f in fields(NullOptions)}


def test_each_option_is_recorded_whole_and_printed(store, tiny_llama):
    """Each changed field reaches the experiment and is recorded in its stored result, and the
    printed line (command and report) says it."""
    lines = set()
    for name in ["base", *CHANGES]:
        options = BASE if name == "base" else changed(name)
        result = intervention_perplexity(
            store, ["de", "fr"], tiny_llama, options=options, n_sentences=2, progress=False
        )
        (stored,) = load_results(store)
        assert stored.options == options == result.options, name
        assert stored.intervention == options.kind, name
        row = stored.rows[0]
        assert len(row["null_exact"]) == options.null.exact_sets, name
        assert row["null_attribution_summary"]["n"] == options.null.attribution_sets, name
        assert render(stored).splitlines()[0] == options.describe(), name
        lines.add(options.describe())
    assert len(lines) == 1 + len(CHANGES)  # every field shows in the printed line


def test_the_report_prints_the_recorded_options(store, tiny_llama, tmp_path):
    from neuronoverlap.pipeline import report

    options = changed("factor")
    intervention_perplexity(store, ["de", "fr"], tiny_llama, options=options, n_sentences=2, progress=False)
    outputs = report(store, tmp_path / "report")
    (entry,) = json.loads(outputs.json.read_text(encoding="utf-8"))["interventions"]
    assert entry["options"] == options.to_dict() and entry["described"] == options.describe()
    assert "scale by 0.5" in outputs.html.read_text(encoding="utf-8")


def _library(make) -> object:
    try:
        return make()
    except InputError as error:
        return error


def _command_line(flag: str, value) -> object:
    args = build_parser().parse_args(
        ["intervene", "perplexity", "--store", "s.h5", "--langs", "de,fr", flag, str(value)]
    )
    try:
        check_options(args)
        return intervention_options(args)
    except InputError as error:
        return error


@pytest.mark.parametrize(
    ("flag", "values", "make"),
    [
        ("--null-sets", (0, 1, 2), lambda v: NullOptions(exact_sets=v)),
        ("--attribution-sets", (0, 1, 2), lambda v: NullOptions(attribution_sets=v)),
        ("--bands", (0, 1, 2), lambda v: NullOptions(n_bands=v)),
        ("--seed", (-1, 0, 1), lambda v: NullOptions(seed=v)),
        ("--confidence", (0.0, 0.5, 1.0, math.nan), lambda v: NullOptions(confidence=v)),
        ("--batch-size", (0, 1, 2), lambda v: InterventionOptions(batch_size=v)),
        ("--factor", (math.nan, math.inf, 2.0), lambda v: InterventionOptions(factor=v)),
        ("--statistic", ("median", "probability"), lambda v: InterventionOptions(statistic=v)),
    ],
)
def test_the_bounds_agree(flag, values, make):
    """The command line refuses exactly what the library refuses, in one line naming the flag."""
    for value in values:
        cli, library = _command_line(flag, value), _library(lambda v=value: make(v))
        assert isinstance(cli, InputError) == isinstance(library, OptionError), (flag, value)
        if isinstance(cli, InputError):
            assert str(cli).startswith(flag) or f" {flag} " in str(cli), str(cli)
            assert "\n" not in str(cli) and "\n" not in str(library)


def test_the_command_line_builds_the_library_defaults():
    args = build_parser().parse_args(["intervene", "perplexity", "--store", "s.h5", "--langs", "de,fr"])
    assert intervention_options(args) == InterventionOptions()
    args = build_parser().parse_args(["intervene", "bli", "--store", "s.h5", "--pair", "de-fr"])
    assert intervention_options(args) == InterventionOptions(batch_size=16)


def test_bad_options_are_one_line_naming_the_field():
    for make, field in [
        (lambda: InterventionOptions(kind="ablate"), "InterventionOptions.kind"),
        (lambda: InterventionOptions(kind="scale"), "InterventionOptions.kind"),
        (lambda: InterventionOptions(kind="scale", factor=math.nan), "InterventionOptions.factor"),
        (lambda: InterventionOptions(kind="zero", factor=2.0), "InterventionOptions.factor"),
        (lambda: InterventionOptions(statistic="median"), "InterventionOptions.statistic"),
        (lambda: InterventionOptions(batch_size=0), "InterventionOptions.batch_size"),
        (lambda: NullOptions(alternative="up"), "NullOptions.alternative"),
        (lambda: NullOptions(n_resamples=0), "NullOptions.n_resamples"),
    ]:
        with pytest.raises(OptionError) as caught:
            make()
        assert field in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(InputError, match="unknown language 'xx'"):
        InterventionOptions(kind="mean", of="xx")
    assert InterventionOptions(kind="mean", of="DE").of == "de"


#: A result as `intervene perplexity` stored it before options were recorded (format 1): the
#: intervention's options in `params`, beside the experiment's own.
FORMAT_1 = {
    "kind": "intervention",
    "format": 1,
    "experiment": "perplexity",
    "name": "de-fr",
    "intervention": "zero",
    "rows": [{"set": "de", "lang": "de", "effect": 0.1, "z_exact": 2.0}],
    "summary": {
        "sets": ["de"],
        "langs": ["de", "fr"],
        "effect": [[0.1, 0.01]],
        "z_exact": [[2.0, 0.1]],
        "own_language_largest": {"de": True},
        "diagonal_share": 1.0,
        "agreement_r": 0.9,
        "baseline": {},
        "empty_sets": ["fr"],
    },
    "params": {
        "langs": ["de", "fr"],
        "n_sentences": 3,
        "split": "devtest",
        "max_tokens": 128,
        "factor": None,
        "of": None,
        "statistic": None,
        "null": {
            "exact_sets": 3,
            "attribution_sets": 200,
            "n_bands": 10,
            "seed": 0,
            "alternative": "greater",
            "confidence": 0.95,
            "n_resamples": 200,
        },
        "band_source": "mean FLORES activation probability of the languages",
        "sets": {"de": {"rule": "lape", "n_neurons": 5}, "fr": {"rule": "lape", "n_neurons": 0}},
        "data": {},
        "model": {"name": "tiny-llama"},
    },
}


def test_a_result_stored_before_options_still_loads_and_reports(store, tmp_path):
    from neuronoverlap.pipeline import report
    from neuronoverlap.store import StoreWriter

    result = read("intervention-perplexity-de-fr", FORMAT_1)
    assert result == InterventionResult.from_dict(FORMAT_1)
    assert result.options is None and result.params["null"]["exact_sets"] == 3
    assert result.describe() == "intervention: zero (its other options were not recorded)"
    assert InterventionResult.from_dict(result.to_dict()) == result
    with StoreWriter.for_existing(store) as writer:
        writer.put_json("results", result.key, FORMAT_1)
    page = report(store, tmp_path / "report").html.read_text(encoding="utf-8")
    assert "intervention: zero (its other options were not recorded)" in page


@pytest.mark.parametrize("edit", ["drop", "add", "drop-null", "add-null"])
def test_options_of_another_version_are_read_as_unrecorded(edit):
    document = InterventionResult("perplexity", "de-fr", "zero", (), {}, {}, BASE).to_dict()
    record = document["options"]["null"] if edit.endswith("null") else document["options"]
    if edit.startswith("drop"):
        record.pop("seed" if edit.endswith("null") else "batch_size")
    else:
        record["a_future_option"] = 1
    assert InterventionResult.from_dict(document).options is None


def test_a_newer_format_is_refused():
    with pytest.raises(InputError, match="format 9"):
        InterventionResult.from_dict({**FORMAT_1, "format": 9})
    with pytest.raises(InputError, match="not of kind 'intervention'"):
        InterventionResult.from_dict({**FORMAT_1, "kind": "spectrum"})


@pytest.mark.parametrize(
    ("argv", "field", "least"),
    [
        (["perplexity", "--langs", "de,fr", "-n"], "n_sentences", 1),
        (["perplexity", "--langs", "de,fr", "--max-tokens"], "max_tokens", 2),
        (["bli", "--pair", "de-fr", "-n"], "n_words", 1),
        (["bli", "--pair", "de-fr", "--max-new-tokens"], "max_new_tokens", 1),
    ],
)
def test_the_experiments_sizes_are_checked_by_the_library_and_named_by_flag(
    store, refused, no_model_load, argv, field, least
):
    experiment = intervention_perplexity if argv[0] == "perplexity" else intervention_bli
    data = (["de", "fr"],) if argv[0] == "perplexity" else (("de", "fr"), ["en"])
    with pytest.raises(OptionError, match=f"{experiment.__name__}.{field}"):
        experiment(store, *data, **{field: least - 1})
    flag = argv[-1]
    refused(
        ["intervene", *argv, str(least - 1), "--store", store, "--quiet"], store.parent, f"{flag} must be"
    )


def test_a_steering_scale_must_be_finite(store, refused, no_model_load):
    with pytest.raises(OptionError, match="intervention_bli.steer_scale"):
        intervention_bli(store, ("de", "fr"), ["en"], steer=True, steer_scale=math.nan)
    argv = ["intervene", "bli", "--pair", "de-fr", "--steer", "--steer-scale", "inf", "--store", store]
    refused([*argv, "--quiet"], store.parent, "--steer-scale must be a finite number")
