"""Options travel whole: one options object per step, checked once naming the field, and the
command line's bounds are the library's (each flag read beside the field it sets)."""

from __future__ import annotations

import pytest

from neuronoverlap.cli import options as opt
from neuronoverlap.cli.checks import check_options
from neuronoverlap.cli.main import build_parser
from neuronoverlap.cli.report import report_options
from neuronoverlap.cli.spectrum import _options as spectrum_options
from neuronoverlap.errors import InputError
from neuronoverlap.options import (
    BridgeOptions,
    CorpusOptions,
    OptionError,
    ProbeOptions,
    ReportOptions,
    SpectrumOptions,
)

#: command, the arguments it needs, and how it builds its options from the parsed flags
COMMANDS = {
    "select-bridge": (["--pair", "de-fr"], opt.bridge_options),
    "spectrum": ([], spectrum_options),
    "report": ([], report_options),
    "probe": (["--pair", "de-fr"], opt.probe_options),
    "corpus": (["--langs", "de"], opt.corpus_options),
}
DEFAULTS = {
    "select-bridge": BridgeOptions(),
    "spectrum": SpectrumOptions(),
    "report": ReportOptions(),
    "probe": ProbeOptions(),
    "corpus": CorpusOptions(),
}

#: (command, flag, options class, field): every count flag and the field it sets
COUNTS = [
    ("select-bridge", "--random-sets", BridgeOptions, "n_random"),
    ("select-bridge", "--bootstrap", BridgeOptions, "n_bootstrap"),
    ("select-bridge", "--permutations", BridgeOptions, "n_permutations"),
    ("select-bridge", "--seed", BridgeOptions, "seed"),
    ("spectrum", "--permutations", SpectrumOptions, "n_permutations"),
    ("spectrum", "--seed", SpectrumOptions, "seed"),
    ("report", "--permutations", SpectrumOptions, "n_permutations"),
    ("report", "--bootstrap", ReportOptions, "bootstrap"),
    ("report", "--examples", ReportOptions, "n_examples"),
    ("probe", "-n", ProbeOptions, "n_samples"),
    ("probe", "--max-new-tokens", ProbeOptions, "max_new_tokens"),
    ("probe", "--batch-size", ProbeOptions, "batch_size"),
    ("probe", "--seed", ProbeOptions, "seed"),
    ("corpus", "-n", CorpusOptions, "n_sentences"),
    ("corpus", "--batch-size", CorpusOptions, "batch_size"),
]


def _command_line(command: str, flag: str, value) -> object:
    """The options the command would build from `flag value`, or the InputError it refuses with
    (the checks every command runs first, then its options)."""
    needed, build = COMMANDS[command]
    args = build_parser().parse_args([command, *needed, flag, str(value)])
    try:
        check_options(args)
        return build(args)
    except InputError as error:
        return error


def _library(cls, field: str, value) -> object:
    try:
        return cls(**{field: value})
    except InputError as error:
        return error


@pytest.mark.parametrize(("command", "flag", "cls", "field"), COUNTS)
def test_count_bounds_agree(command, flag, cls, field):
    least = cls.AT_LEAST[field]
    for value in (least - 1, least, least + 1):
        cli, library = _command_line(command, flag, value), _library(cls, field, value)
        assert isinstance(cli, InputError) == isinstance(library, OptionError), (flag, value)
        if isinstance(cli, InputError):
            assert flag in str(cli) and str(value) in str(cli)
            assert f"{cls.__name__}.{field}" in str(library)


@pytest.mark.parametrize("command", ["select-bridge", "spectrum", "report"])
@pytest.mark.parametrize(
    ("flag", "field", "values"),
    [
        ("--top-rate", "top_rate", (-0.1, 0.0, 1e-6, 0.01, 1.0, 1.01)),
        ("--agnostic-share", "agnostic_share", (-0.1, 0.0, 0.5, 0.999, 1.0)),
    ],
)
def test_share_bounds_agree(command, flag, field, values):
    cls = BridgeOptions if command == "select-bridge" else SpectrumOptions
    for value in values:
        cli, library = _command_line(command, flag, value), _library(cls, field, value)
        assert isinstance(cli, InputError) == isinstance(library, OptionError), (command, flag, value)
        if isinstance(cli, InputError):
            assert flag in str(cli)


def test_the_command_line_builds_the_library_defaults():
    for command, (needed, build) in COMMANDS.items():
        assert build(build_parser().parse_args([command, *needed])) == DEFAULTS[command], command


def test_a_bad_field_is_named_once():
    with pytest.raises(OptionError, match=r"unknown method 'magic'.*\(BridgeOptions\.method\)") as caught:
        BridgeOptions(method="magic")
    assert caught.value.field == "method"
    assert str(caught.value.named("--method")).startswith("unknown --method 'magic'")
    with pytest.raises(OptionError, match="SpectrumOptions.count_rule"):
        SpectrumOptions(count_rule="floor")
    with pytest.raises(OptionError, match="ReportOptions.n_examples"):
        ReportOptions(n_examples=-1)
    with pytest.raises(OptionError, match="window"):
        BridgeOptions(window=(1, -2))
    assert BridgeOptions(window=[2, 3]).window == (2, 3)
    with pytest.raises(OptionError, match="unknown stop rule 'comma'"):
        ProbeOptions(stop_rule="comma")
    with pytest.raises(OptionError, match="FLORES split"):
        CorpusOptions(split="train")


def test_one_mantel_default():
    import inspect

    from neuronoverlap.analyses import uncertainty, writer
    from neuronoverlap.report import write_report

    default = SpectrumOptions().n_permutations
    assert inspect.signature(write_report).parameters["permutations"].default == default
    assert ReportOptions().spectrum.n_permutations == default
    for function in (writer.write_spectrum_outputs, uncertainty.write_uncertain_spectrum):
        assert "n_permutations" not in inspect.signature(function).parameters  # from the options


def test_options_round_trip_as_records():
    report = ReportOptions(spectrum=SpectrumOptions(top_rate=0.05, agnostic_share=0.9), bootstrap=10)
    assert ReportOptions.from_dict(report.to_dict()) == report
    with pytest.raises(InputError, match="no field"):
        BridgeOptions.from_dict({"n_random": 5, "colour": "red"})
