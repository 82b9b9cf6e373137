"""The full-size study's plan (evaluation/fullsize.py): its pairs, the screening rule, test words
independent of the earlier 150-word run, and a resumable screening on the tiny model."""

from __future__ import annotations

import json

from neuronoverlap.data import load_dictionary
from neuronoverlap.evaluation.fullsize import (
    EARLIER,
    choose_composed,
    composed_candidates,
    european_pairs,
    main,
)
from neuronoverlap.evaluation.protocol import is_identical
from neuronoverlap.evaluation.validation import StudyConfig, run_study


def test_the_ten_european_pairs_and_the_composed_candidates():
    pairs = european_pairs()
    assert len(pairs) == 10 and len({frozenset(p) for p in pairs}) == 10
    assert all(s < t for s, t in pairs)
    assert all(
        y in {"de", "es", "fr", "it", "pt"} and x not in {"en", "de", "es", "fr", "it", "pt"}
        for x, y in composed_candidates()
    )


def test_composed_pairs_are_chosen_on_zero_shot_alone():
    screen = {"ar-de": 0.04, "fi-de": 0.05, "hu-fr": 0.2, "id-es": 0.2, "zh-it": 0.1}
    assert choose_composed(screen) == [("hu", "fr"), ("id", "es"), ("zh", "it"), ("fi", "de")]
    assert choose_composed(screen, max_composed=2) == [("hu", "fr"), ("id", "es")]  # ties: candidate order
    assert choose_composed(screen, threshold=0.5) == []


def test_the_new_test_words_leave_out_the_earlier_run_and_are_distinct(tiny_llama, tmp_path, monkeypatch):
    """de-fr: the 300 words are disjoint from the 150 of `-n 150 --seed 0 --non-identical-only`
    (and so from its first 40), all non-identical, and drawn from the rest of the split."""
    import neuronoverlap.evaluation.generation_cache as generation_cache

    monkeypatch.setattr(
        generation_cache, "generate_texts", lambda model, prompts, *a, **k: [" x\n"] * len(prompts)
    )
    earlier_config = StudyConfig(example_seeds=(0,), n=150, seed=0, identical=False)
    new_config = StudyConfig(
        example_seeds=(0,), n=300, seed=25, identical=False, exclude=(("de-fr", *EARLIER["de-fr"]),)
    )
    earlier = run_study(tiny_llama, [("de", "fr")], ["en"], tmp_path / "a", earlier_config, False)["de-fr"]
    new = run_study(tiny_llama, [("de", "fr")], ["en"], tmp_path / "b", new_config, False)["de-fr"]
    assert len(earlier.words) == 150 and len(new.words) == 300
    assert not set(earlier.words) & set(new.words)
    assert not any(new.identical)
    test = load_dictionary("de", "fr", split="test")
    assert all(not is_identical(w, test.translations[w]) for w in new.words)


def test_the_screening_is_resumable_and_writes_the_plan(tmp_path, capsys, monkeypatch):
    out = tmp_path / "fullsize"
    argv = ["--model", "tiny-llama", "--store", str(tmp_path / "s.h5"), "--out", str(out)]
    argv += ["--screen-n", "2", "--sources", "fi,id", "--screen-only", "--quiet"]
    assert main(argv) == 0
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert len(plan["screen"]) == len(composed_candidates(("fi", "id"))) == 10
    assert plan["pairs"][:10] == [f"{s}-{t}" for s, t in european_pairs()]
    assert plan["composed"] == [f"{s}-{t}" for s, t in choose_composed(plan["screen"])]
    import neuronoverlap.evaluation.bli as bli

    monkeypatch.setattr(bli, "generate_texts", None)  # a rerun generates nothing
    assert main(argv) == 0
    assert json.loads((out / "plan.json").read_text(encoding="utf-8"))["screen"] == plan["screen"]
    capsys.readouterr()
    assert main([*argv, "-n", "1"]) == 2
    assert main([*argv, "--sources", "xx"]) == 2
    assert capsys.readouterr().err.count("error") == 2
    assert not [p.name for p in out.rglob("*") if p.name.startswith(".")]  # no temporary file left
    damaged = out / "screen" / "screen-fi-de.json"
    damaged.write_text(damaged.read_text(encoding="utf-8")[:10], encoding="utf-8")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "screening file" in err and "screen-fi-de.json is damaged" in err and len(err.splitlines()) == 1


def test_the_study_runs_after_the_screening(tmp_path, monkeypatch, capsys):
    """The whole command on tiny-llama, with the pair list cut to one European pair and two
    candidates (the study step once called `validate` with positional options and failed)."""
    import neuronoverlap.evaluation.fullsize as fullsize

    monkeypatch.setattr(fullsize, "european_pairs", lambda: [("de", "fr")])
    monkeypatch.setattr(fullsize, "CANDIDATES", ("en", "es"))
    out = tmp_path / "fullsize"
    argv = ["--model", "tiny-llama", "--store", str(tmp_path / "s.h5"), "--out", str(out), "--quiet"]
    argv += ["--screen-n", "2", "--sources", "fi", "--threshold", "1", "-n", "4", "--probe-n", "4"]
    assert main(argv) == 0
    summary = json.loads((out / "study" / "validate.json").read_text(encoding="utf-8"))
    assert list(summary["pairs"]) == ["de-fr"] and set(summary["pairs"]["de-fr"]["accuracy"]) >= {"en", "es"}
    assert "wrote" in capsys.readouterr().out


def test_stage_one_is_unchanged_and_stage_two_is_the_other_direction(tmp_path):
    """Stage 1's pair list, protocol, probe recording and folder are exactly as registered (and
    as the running study was started); stage 2 is the reverse of each European pair with the same
    protocol, in its own folder."""
    from neuronoverlap.evaluation.bli import PROMPT_STYLES
    from neuronoverlap.evaluation.fullsize import (
        parser,
        second_stage_pairs,
        stage_folder,
        study_config,
        study_probes,
    )
    from neuronoverlap.options import ProbeOptions

    args = parser().parse_args([])
    assert args.stage == 1 and args.store == "store/fullsize.h5" and args.out == "out/fullsize"
    assert european_pairs() == [
        ("de", "es"), ("de", "fr"), ("de", "it"), ("de", "pt"), ("es", "fr"),
        ("es", "it"), ("es", "pt"), ("fr", "it"), ("fr", "pt"), ("it", "pt"),
    ]  # fmt: skip
    registered = StudyConfig(
        prompts=PROMPT_STYLES["study"],
        example_seeds=(0, 1, 2),
        n=300,
        seed=25,
        identical=False,
        batch_size=32,
        exclude=(("de-fr", 150, 0), ("de-it", 150, 0), ("de-es", 150, 0)),
    )
    assert study_config(args) == registered
    assert (args.probe_n, args.screen_n, args.screen_seed, args.threshold, args.max_composed) == (
        64, 100, 25, 0.05, 10,
    )  # fmt: skip
    # the study's probe sets were recorded counting every position, before the default changed
    recorded = ProbeOptions(
        n_samples=64, seed=0, template=None, names="endonym", split="train", stop_rule="quote",
        max_new_tokens=16, count="all", mean_dtype="float32", batch_size=16, top_k=None,
    )  # fmt: skip
    assert study_probes(args) == recorded and study_probes(args).count == "all"
    assert stage_folder(tmp_path, 1) == tmp_path / "study"
    second = parser().parse_args(["--stage", "2"])
    assert study_config(second) == registered  # the exclusions name stage-1 directions only
    assert study_probes(second) == recorded
    assert not {name for name, *_ in registered.exclude} & {f"{s}-{t}" for s, t in second_stage_pairs()}
    assert [f"{s}-{t}" for s, t in second_stage_pairs()] == [
        "es-de", "fr-de", "it-de", "pt-de", "fr-es", "it-es", "pt-es", "it-fr", "pt-fr", "pt-it",
    ]  # fmt: skip
    assert stage_folder(tmp_path, 2) == tmp_path / "study-stage2"


def test_the_study_records_and_reuses_its_probe_sets_counting_every_position(tmp_path, monkeypatch):
    """`run` hands `validate` the pinned probe options (count "all"), whatever the default."""
    import neuronoverlap.evaluation.fullsize as fullsize
    import neuronoverlap.pipeline as pipeline
    from neuronoverlap.options import ProbeOptions

    asked = {}

    def stop_at_validate(store, pairs, **kwargs):
        asked.update(kwargs)
        raise KeyboardInterrupt  # nothing of the study runs

    monkeypatch.setattr(fullsize, "screen_pair", None)  # stage 2 screens nothing
    monkeypatch.setattr(pipeline, "validate", stop_at_validate)
    argv = ["--model", "tiny-llama", "--store", str(tmp_path / "s.h5"), "--out", str(tmp_path / "out")]
    assert main([*argv, "--stage", "2", "--quiet"]) == 130  # the interrupt, reported as one
    assert ProbeOptions().count == "answer" and asked["probes"].count == "all"
    assert asked["probes"] == fullsize.study_probes(fullsize.parser().parse_args([]))


def test_stage_two_skips_the_screening_and_keeps_stage_one_files(tmp_path, monkeypatch):
    import neuronoverlap.evaluation.fullsize as fullsize

    monkeypatch.setattr(fullsize, "screen_pair", None)  # stage 2 screens nothing
    out = tmp_path / "fullsize"
    out.mkdir()
    (out / "plan.json").write_text("stage 1's\n", encoding="utf-8")
    argv = ["--model", "tiny-llama", "--store", str(tmp_path / "s.h5"), "--out", str(out)]
    assert main([*argv, "--stage", "2", "--screen-only", "--quiet"]) == 0
    plan = json.loads((out / "plan-stage2.json").read_text(encoding="utf-8"))
    assert plan["stage"] == 2 and plan["pairs"][0] == "es-de" and len(plan["pairs"]) == 10
    assert (out / "plan.json").read_text(encoding="utf-8") == "stage 1's\n"
