"""The full-size validation study of issue 25 (pre-registered in docs/evaluation.md): its pair
list, the screening that picks the composed pairs, and one resumable command that runs it all.

Pairs: the 10 unordered pairs of de, es, fr, it, pt (one direction each, the source first in
alphabetical order), and composed pairs X -> Y (X one of `COMPOSED_SOURCES`, Y one of the five;
composed through English) whose **zero-shot** p@1 on a screening sample is at least
`threshold` (0.05): non-identical words of the MUSE *train* split (disjoint from every test
word), `screen_n` drawn with `screen_seed`, study prompts (5 non-identical shots, example seed
0). Only zero-shot results are read, never a bridged one. If more than `max_composed` pass, the
highest screening p@1 are kept (ties: the order of `composed_candidates`).

Test words: `n` (300) non-identical test words per pair drawn with `seed` (25), after leaving
out, in the pairs the earlier 150-word run evaluated in the same direction (de-fr, de-it,
de-es), exactly the words that run drew (`-n 150 --seed 0 --non-identical-only`, whose first
40 were the 40-word run's); the other pairs were not evaluated before. Candidates: en, de, fr,
it, pt, es less the pair's languages (4 for a European pair, 5 for a composed one); 3 example
seeds; probe sets of 64 pairs; selection without its own bootstrap.

Resumable: the screening keeps one JSON per pair, the store keeps the probe sets and
selections, the study's generation cache keeps every answer; rerunning the same command does
only what is missing.

Stage 2 (`--stage 2`, docs/evaluation.md, the scheduling note of issue 26's tests): the other
direction of each European pair (es-de, fr-de, ..., pt-it), same protocol and store, no
screening, its own folder (`OUT/study-stage2`, `OUT/plan-stage2.json`), so stage 1's outputs
are never rewritten; words drawn the same way (`n` with seed 25; the exclusion list names only
stage-1 directions, so it removes nothing here). Run it after stage 1 has finished (one process
writes the store at a time).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from neuronoverlap.errors import InputError

EUROPEAN = ("de", "es", "fr", "it", "pt")
#: Registry languages with MUSE dictionaries to English, outside the five (alphabetical).
COMPOSED_SOURCES = ("ar", "fi", "he", "hu", "id", "ja", "tl", "zh")
CANDIDATES = ("en", "de", "fr", "it", "pt", "es")
#: The earlier run's sample, left out per pair: (n, seed) of `-n 150 --seed 0 --non-identical-only`.
EARLIER = {"de-fr": (150, 0), "de-it": (150, 0), "de-es": (150, 0)}


def european_pairs() -> list[tuple[str, str]]:
    """The 10 unordered pairs of the five, source first alphabetically."""
    return list(itertools.combinations(sorted(EUROPEAN), 2))


def second_stage_pairs() -> list[tuple[str, str]]:
    """Stage 2: the other direction of each European pair (target first alphabetically)."""
    return [(t, s) for s, t in european_pairs()]


#: Each stage's study folder and plan file under the output folder.
STAGE_FOLDERS = {1: "study", 2: "study-stage2"}
STAGE_PLANS = {1: "plan.json", 2: "plan-stage2.json"}


def stage_folder(out: str | os.PathLike[str], stage: int) -> Path:
    """Where a stage's study writes (`validate.json`, `pairs/`, its generation cache)."""
    return Path(out) / STAGE_FOLDERS[stage]


def composed_candidates(sources: tuple[str, ...] = COMPOSED_SOURCES) -> list[tuple[str, str]]:
    return [(x, y) for x in sources for y in sorted(EUROPEAN)]


def choose_composed(
    screen: dict[str, float], threshold: float = 0.05, max_composed: int = 10
) -> list[tuple[str, str]]:
    """The composed pairs whose screening zero-shot p@1 is at least `threshold`, at most
    `max_composed` of them (the highest p@1; ties in candidate order)."""
    order = [f"{x}-{y}" for x, y in composed_candidates()]
    passed = [name for name in order if name in screen and screen[name] >= threshold]
    passed.sort(key=lambda name: (-screen[name], order.index(name)))
    return [tuple(name.split("-")) for name in passed[:max_composed]]


def screen_pair(model, src: str, tgt: str, folder: Path, n: int, seed: int) -> float:
    """Zero-shot p@1 on `n` non-identical train words of src -> tgt (kept in `folder`)."""
    from neuronoverlap.data import load_dictionary
    from neuronoverlap.evaluation.bli import PROMPT_STYLES, evaluate_bli
    from neuronoverlap.evaluation.protocol import is_identical
    from neuronoverlap.store.journal import atomic_write_json, read_json

    path = folder / f"screen-{src}-{tgt}.json"
    if path.is_file():
        saved = read_json(path, "screening file")
        if "zero_shot" not in saved:
            raise InputError(f"screening file {path} is damaged (no zero_shot); delete it and rerun")
        return saved["zero_shot"]
    dictionary = load_dictionary(src, tgt, split="train")
    kept = {w: g for w, g in dictionary.translations.items() if not is_identical(w, g)}
    dictionary = replace(dictionary, translations=kept).sample_source_words(n, seed, allow_fewer=True)
    result = evaluate_bli(
        model,
        src,
        tgt,
        seed=0,
        prompts=PROMPT_STYLES["study"],
        max_new_tokens=8,
        n_resamples=1000,
        progress=False,
        dictionary=dictionary,
    )
    value = result.accuracy_of("zero-shot")
    payload = {"pair": f"{src}-{tgt}", "zero_shot": value, "n": result.conditions["zero-shot"].accuracy.n}
    atomic_write_json(path, payload)
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m neuronoverlap.evaluation.fullsize",
        description="Run the pre-registered full-size validation study (docs/evaluation.md, "
        "'Pre-registered: the full-size study (issue 25)'): screen the composed pairs on "
        "zero-shot p@1, then `validate` on the chosen pairs. Resumable: rerun the same command.",
    )
    p.add_argument("--model", default="embedded", help="model spec (default: embedded)")
    p.add_argument("--store", default="store/fullsize.h5", help="store for probe sets and selections")
    p.add_argument("--out", default="out/fullsize", help="output folder (screening, cache, results)")
    p.add_argument("-n", type=int, default=300, help="non-identical test words per pair (default: 300)")
    p.add_argument("--seed", type=int, default=25, help="test-word sample seed (default: 25)")
    p.add_argument("--screen-n", type=int, default=100, help="screening words per pair (default: 100)")
    p.add_argument("--screen-seed", type=int, default=25, help="screening sample seed (default: 25)")
    p.add_argument("--threshold", type=float, default=0.05, help="zero-shot p@1 to keep (default: 0.05)")
    p.add_argument("--max-composed", type=int, default=10, help="composed pairs kept at most (default: 10)")
    p.add_argument("--probe-n", type=int, default=64, help="probe pairs per probe set (default: 64)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="prompts per batch (default: 32; with prefix reuse a decode step costs about the same "
        "for 1 or 32 rows on a CPU, docs/performance.md)",
    )
    p.add_argument(
        "--sources",
        default=",".join(COMPOSED_SOURCES),
        help=f"source languages of the composed candidates (default: {','.join(COMPOSED_SOURCES)})",
    )
    p.add_argument(
        "--stage",
        type=int,
        choices=sorted(STAGE_FOLDERS),
        default=1,
        help="1 (default): screening, then the 10 European pairs one way and the composed pairs "
        "(OUT/study); 2: the other direction of the 10 European pairs, same protocol and store, no "
        "screening (OUT/study-stage2; run after stage 1 has finished)",
    )
    p.add_argument("--screen-only", action="store_true", help="stop after the screening and the pair list")
    p.add_argument("--no-prefix-cache", dest="prefix_cache", action="store_false", help="read prompts whole")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def study_config(args):
    """The study protocol of both stages (`StudyConfig`), from the command's options."""
    from neuronoverlap.evaluation.bli import PROMPT_STYLES
    from neuronoverlap.evaluation.validation import StudyConfig

    return StudyConfig(
        prompts=PROMPT_STYLES["study"],
        example_seeds=(0, 1, 2),
        n=args.n,
        seed=args.seed,
        identical=False,
        batch_size=args.batch_size,
        exclude=tuple((name, n, seed) for name, (n, seed) in EARLIER.items()),
    )


def _check(args) -> tuple[str, ...]:
    if args.n < 2 or args.screen_n < 1 or args.probe_n < 1 or args.max_composed < 0 or args.batch_size < 1:
        raise InputError("-n must be at least 2; --screen-n, --probe-n and --batch-size at least 1")
    if not 0 <= args.threshold <= 1:
        raise InputError(f"--threshold must be between 0 and 1, got {args.threshold}")
    sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    unknown = [s for s in sources if s not in COMPOSED_SOURCES]
    if unknown:
        raise InputError(f"--sources: {', '.join(unknown)} is not one of {', '.join(COMPOSED_SOURCES)}")
    return sources


def stage_plan(args, model) -> dict:
    """The pairs of `args.stage` (stage 1: after the screening) and the plan written beside them."""
    if args.stage == 2:
        pairs = second_stage_pairs()
        return {
            "stage": 2,
            "pairs": [f"{s}-{t}" for s, t in pairs],
            "composed": [],
            "exclude": EARLIER,
            "command": sys.argv,
        }
    out = Path(args.out)
    screen = {}
    for x, y in composed_candidates(_check(args)):
        screen[f"{x}-{y}"] = screen_pair(model, x, y, out / "screen", args.screen_n, args.screen_seed)
        print(f"screen {x}-{y}: zero-shot p@1 {screen[f'{x}-{y}']:.3f}", flush=True)
    composed = choose_composed(screen, args.threshold, args.max_composed)
    pairs = european_pairs() + composed
    return {
        "pairs": [f"{s}-{t}" for s, t in pairs],
        "composed": [f"{s}-{t}" for s, t in composed],
        "screen": screen,
        "threshold": args.threshold,
        "exclude": EARLIER,
        "command": sys.argv,
    }


def study_probes(args):
    """How the study records its probe sets (`ProbeOptions`), as registered. `count="all"` is
    pinned: the pre-registered study's probe sets were recorded counting every position, before
    the default became "answer" (issue 26), and a store's sets are reused only under their rule."""
    from neuronoverlap.options import ProbeOptions

    return ProbeOptions(n_samples=args.probe_n, max_new_tokens=16, count="all")


def run(args) -> dict:
    """Screen, choose, and run the study (stage 2: no screening); returns the plan (and writes
    `plan.json`, stage 2 `plan-stage2.json`)."""
    from neuronoverlap.evaluation.study_output import study_table
    from neuronoverlap.options import BridgeOptions
    from neuronoverlap.pipeline import validate
    from neuronoverlap.pipeline.model import ModelSource

    _check(args)
    out = Path(args.out)
    source = ModelSource(args.model)
    model = source.load(args.store)
    plan = stage_plan(args, model)
    pairs = [tuple(name.split("-")) for name in plan["pairs"]]
    out.mkdir(parents=True, exist_ok=True)
    (out / STAGE_PLANS[args.stage]).write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
    print(f"{len(pairs)} pairs: {', '.join(plan['pairs'])}", flush=True)
    if args.screen_only:
        return plan
    result, _, paths = validate(
        args.store,
        pairs,
        config=study_config(args),
        bridges=CANDIDATES,
        out=stage_folder(out, args.stage),
        model=source,
        selection=BridgeOptions(n_bootstrap=0),
        probes=study_probes(args),
        progress=not args.quiet,
        prefix_cache=args.prefix_cache,
    )
    print(study_table(result), flush=True)
    print(f"wrote {paths['summary']}", flush=True)
    return plan


def main(argv: list[str] | None = None) -> int:
    from neuronoverlap.cli.script import script_main

    args = parser().parse_args(argv)
    return script_main(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
