"""`evaluate {bli,mrc}`: what a bridge does for cross-lingual in-context learning.

Inputs are checked before the model is loaded. With --store the result is kept in that store
(results/bli-SRC-TGT, results/mrc-LANG), where `report` finds it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from neuronoverlap.cli import options as opt
from neuronoverlap.errors import InputError
from neuronoverlap.languages import DEFAULT_BRIDGES, parse_languages, parse_pair


def _add_common(p: argparse.ArgumentParser, batch_size: int) -> None:
    opt.add_model_options(p)
    opt.add_data_option(p)
    p.add_argument(
        "--store",
        default=None,
        help="keep the result in this store (results/TASK-NAME), where `report` finds it; "
        "its model is the default --model (default: no store)",
    )
    g = p.add_argument_group("bridges")
    which = g.add_mutually_exclusive_group()
    which.add_argument(
        "--bridge", default=None, help="one bridge language, e.g. en (default: zero-shot only)"
    )
    which.add_argument(
        "--bridges",
        default=None,
        help="'all' (every candidate of the paper: "
        f"{','.join(DEFAULT_BRIDGES)}, less the languages of the task) or a "
        "comma-separated list, e.g. en,de,fr",
    )
    g.add_argument(
        "--ranking",
        default=None,
        help="bridges in selection order, best first: a list (en,fr,de) or the "
        "JSON file of `select-bridge --json` (its 'ranking'). Reports whether the "
        "first one was the best evaluated bridge and its rank; every ranked "
        "bridge must be evaluated (e.g. --bridges all)",
    )
    g = p.add_argument_group("run")
    g.add_argument(
        "-n", type=int, default=None, help="evaluate a seeded sample of this many items (default: all)"
    )
    opt.add_seed(g, "sample, the few-shot examples and the bootstrap")
    g.add_argument(
        "--batch-size",
        type=int,
        default=batch_size,
        help=f"prompts per generation batch (default: {batch_size})",
    )
    g.add_argument(
        "--confidence", type=float, default=0.95, help="confidence level of the intervals (default: 0.95)"
    )
    g.add_argument("--bootstrap", type=int, default=10_000, help="bootstrap resamples (default: 10000)")
    g.add_argument(
        "--out",
        default=None,
        help="folder for the results: {task}-{name}.json (parameters, model "
        "fingerprint, accuracies, tests) and {task}-{name}.jsonl (every record); "
        "default: print only",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    add_prefix_cache_option(g)


def add_prefix_cache_option(p) -> None:
    """`--no-prefix-cache` (evaluate bli/mrc, validate)."""
    p.add_argument(
        "--no-prefix-cache",
        dest="prefix_cache",
        action="store_false",
        help="read every prompt whole instead of reading the prompts' shared prefix (few-shot "
        "examples) once and only each prompt's suffix; the same answers, slower (to check or "
        "to time). Prefix reuse is on only where the model's KV-cache self-check passed",
    )


def add_parsers(subparsers) -> argparse.ArgumentParser:
    """Add `evaluate` with its `bli` and `mrc` subcommands to `subparsers`."""
    evaluate = opt.add_command(
        subparsers,
        "evaluate",
        run_evaluate,
        help="X-ICL evaluation: BLI and Belebele MRC, zero-shot versus bridged",
        description="Measure what a bridge language does for cross-lingual in-context learning: "
        "bilingual lexicon induction (precision@1) and Belebele reading comprehension "
        "(accuracy), zero-shot versus through each bridge, with bootstrap intervals "
        "and McNemar's test. See docs/evaluation.md.",
    )
    tasks = evaluate.add_subparsers(dest="evaluate_task", metavar="TASK", required=True, help="bli or mrc")

    p = tasks.add_parser(
        "bli",
        help="bilingual lexicon induction on the MUSE test split",
        description="Translate the unique source words of a MUSE test dictionary (composed "
        "through English when MUSE lacks the pair). Zero-shot prompt "
        "'{S}:\"{w}\"→{T}:'; bridged through B: '{S}:\"{w}\"→{B}:' gives b, then "
        '\'{S}:"{w}"→{B}:"{b}"→{T}:\'. Score: precision@1, the first answer word '
        "against every gold translation.",
    )
    p.add_argument("--pair", required=True, help="source-target pair, e.g. zh-ja")
    g = p.add_argument_group("prompts")
    g.add_argument(
        "--prompts",
        default="paper",
        choices=["paper", "lines", "study"],
        help="template style: 'paper' ({S}:\"{w}\"→{T}:, the default), 'lines' "
        "({S}: {w} / {T}: on two lines) or 'study' (lines, 5 shots, no identical "
        "pair among them: the validation protocol); --template etc. override "
        "its parts",
    )
    g.add_argument(
        "--template",
        default=None,
        help="direct template with {S} {T} {w}: the zero-shot prompt and the first "
        "bridged step (default: the style's; \\n in any template is a newline)",
    )
    g.add_argument(
        "--bridge-template",
        default=None,
        help="second bridged step with {S} {B} {T} {w} {b} (default: the style's)",
    )
    g.add_argument(
        "--shots",
        type=int,
        default=None,
        help="few-shot examples from the train split before each prompt, the same "
        "source words in every condition (default: the style's: 0, study 5)",
    )
    g.add_argument(
        "--non-identical-shots",
        action="store_true",
        help="draw examples only from non-identical pairs (source != gold, bridge "
        "word != source and target; on with --prompts study)",
    )
    g.add_argument(
        "--shot-answer",
        default=None,
        help="how an example's answer {a} follows its prompt (paper: '\"{a}\"', lines: ' {a}')",
    )
    g.add_argument(
        "--names",
        default="endonym",
        choices=["endonym", "english"],
        help="language names in prompts: Deutsch (endonym, the default) or German",
    )
    g.add_argument(
        "--split",
        default="test",
        choices=["test", "train", "all"],
        help="dictionary split (default: test = MUSE 5000-6500)",
    )
    g.add_argument("--max-new-tokens", type=int, default=16, help="tokens generated per answer (default: 16)")
    g.add_argument(
        "--metric",
        default="p@1",
        help="'p@1' (the default: the greedy answer's first word against the golds), 'logprob' "
        "(the gold answer's teacher-forced log-probability, the best over a word's golds: one "
        "forward, no generation but the bridged step 1) or 'both'; same intervals and paired "
        "comparisons with zero-shot (docs/evaluation.md)",
    )
    _add_common(p, batch_size=16)

    p = tasks.add_parser(
        "mrc",
        help="Belebele reading comprehension with the passage in another language",
        description="Belebele multiple choice (A-D). Questions and answers stay in English (or "
        "German: --question-lang de); only the passage is in the language --lang, "
        "rebuilt from FLORES-200. Zero-shot reads that passage; bridged reads it "
        "translated sentence by sentence into the bridge language by the model.",
    )
    p.add_argument("--lang", required=True, help="language of the passage, e.g. sw")
    p.add_argument(
        "--question-lang",
        default="en",
        choices=["en", "de"],
        help="language of questions and answers (default: en; the Belebele files available)",
    )
    p.add_argument(
        "--reference",
        action="store_true",
        help="also answer on the question language's own passage (an upper bound)",
    )
    g = p.add_argument_group("prompts")
    g.add_argument(
        "--question-template",
        default=None,
        help="question prompt with {passage} {question} {A} {B} {C} {D} (default: the reference code's)",
    )
    g.add_argument(
        "--translation-template",
        default=None,
        help="sentence translation prompt with {S} {T} {x} (default: '{S}: {x}\\n{T}:')",
    )
    g.add_argument(
        "--translation-shots",
        type=int,
        default=2,
        help="example translations (FLORES dev sentences of other passages) before "
        "each sentence to translate (default: 2; 0 for none)",
    )
    g.add_argument(
        "--names",
        default="english",
        choices=["endonym", "english"],
        help="language names in the translation prompt (default: english)",
    )
    g.add_argument(
        "--scoring",
        default="generate",
        choices=["generate", "likelihood"],
        help="how an answer is read: 'generate' (the default, the reference code's): "
        "the first letter A-D of the greedy reply; 'likelihood': the letter "
        "whose token is the most probable next token (suits small base models "
        "that answer one letter to everything)",
    )
    g.add_argument(
        "--max-new-tokens",
        type=int,
        default=4,
        help="tokens generated per answer with --scoring generate (default: 4)",
    )
    g.add_argument(
        "--translation-max-new-tokens",
        type=int,
        default=128,
        help="tokens generated per translated sentence (default: 128)",
    )
    _add_common(p, batch_size=8)
    return evaluate


def _bridges(args, exclude: set[str]) -> list[str]:
    if args.bridges is not None and args.bridges.strip().lower() == "all":
        return [b for b in DEFAULT_BRIDGES if b not in exclude]
    spec = args.bridges if args.bridges is not None else args.bridge
    if spec is None:
        return []
    return [lang.code for lang in parse_languages(spec)]


def read_ranking_file(path: Path, pair: tuple[str, str] | None = None) -> list[str]:
    """The "ranking" list of a bridge-selection JSON (`select-bridge --json`); when the file
    names its pair (src, tgt) and `pair` is given, they must agree."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the bridge ranking {path}: {exc}") from None
    ranking = data.get("ranking") if isinstance(data, dict) else None
    if not isinstance(ranking, list) or not all(isinstance(b, str) for b in ranking):
        raise InputError(f"{path} has no 'ranking' list of bridge codes")
    found = (data.get("src"), data.get("tgt"))
    if pair is not None and all(found) and tuple(found) != pair:
        raise InputError(f"{path} ranks bridges for {found[0]}-{found[1]}, not {pair[0]}-{pair[1]}")
    return ranking


def _ranking(args, bridges: list[str], pair: tuple[str, str] | None = None) -> list[str] | None:
    if args.ranking is None:
        return None
    path = Path(args.ranking)
    spec = read_ranking_file(path, pair) if path.is_file() else args.ranking
    ranking = [lang.code for lang in parse_languages(spec)]
    missing = [b for b in ranking if b not in bridges]
    if missing:
        raise InputError(
            f"--ranking names {', '.join(missing)}, which are not evaluated; add them to "
            "--bridges (or use --bridges all)"
        )
    return ranking


def _check_run_options(args) -> None:
    if args.n is not None and args.n < 1:
        raise InputError(f"-n must be at least 1, got {args.n}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.bootstrap < 1:
        raise InputError(f"--bootstrap must be at least 1, got {args.bootstrap}")
    if not 0 < args.confidence < 1:
        raise InputError(f"--confidence must be between 0 and 1, got {args.confidence}")
    if args.max_new_tokens < 1:
        raise InputError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise InputError(f"--out {args.out} exists and is not a folder")
    if args.store is not None and not Path(args.store).is_file():
        raise InputError(
            f"--store {args.store}: no store there; evaluate keeps its result in an existing store "
            "(record one with `probe` or `demo` first, or leave --store out)"
        )


def unescape_template(text: str) -> str:
    """A template typed on the command line, with `\\n` and `\\t` turned into a newline and a
    tab (a shell argument cannot easily hold a newline)."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _bli_prompts(args):
    from neuronoverlap.evaluation.bli import PROMPT_STYLES

    prompts = PROMPT_STYLES[args.prompts]
    changes = {"names": args.names}
    if args.shots is not None:
        changes["shots"] = args.shots
    if args.non_identical_shots:
        changes["non_identical_shots"] = True
    for field, value in (
        ("direct", args.template),
        ("bridged", args.bridge_template),
        ("answer", args.shot_answer),
    ):
        if value is not None:
            changes[field] = unescape_template(value)
    prompts = replace(prompts, **changes)
    prompts.check()
    return prompts


def _mrc_prompts(args):
    from neuronoverlap.evaluation.mrc import MRCPrompts

    prompts = MRCPrompts(names=args.names, translation_shots=args.translation_shots)
    if args.question_template is not None:
        prompts = replace(prompts, question=unescape_template(args.question_template))
    if args.translation_template is not None:
        prompts = replace(prompts, translation=unescape_template(args.translation_template))
    prompts.check()
    return prompts


def _finish(result, args, write) -> int:
    result.params["command"] = {k: v for k, v in vars(args).items() if not callable(v)}
    print(f"model: {result.model['fingerprint']}  ({result.seconds:.1f} s)")
    print(result.table())
    if args.out is not None:
        paths = write(result, args.out)
        print(f"wrote {paths['summary']} and {paths['records']}")
    if args.store is not None:
        from neuronoverlap.pipeline import save_evaluation

        print(f"kept in {args.store} as results/{save_evaluation(args.store, result)}")
    return 0


def cmd_bli(args) -> int:
    from neuronoverlap.data import load_dictionary
    from neuronoverlap.evaluation.bli import check_bridges, evaluate_bli, write_bli_results
    from neuronoverlap.evaluation.logprob import check_metric

    check_metric(args.metric)
    src, tgt = (lang.code for lang in parse_pair(args.pair))
    bridges = check_bridges(src, tgt, _bridges(args, {src, tgt}))
    ranking = _ranking(args, bridges, (src, tgt))
    _check_run_options(args)
    prompts = _bli_prompts(args)
    dictionary = load_dictionary(src, tgt, split=args.split, data_dir=args.data_dir)
    if args.n is not None and args.n > dictionary.n_source_words:
        raise InputError(f"-n {args.n} exceeds the {dictionary.n_source_words} source words of {dictionary}")
    model = opt.model_source(args).load(args.store)
    result = evaluate_bli(
        model,
        src,
        tgt,
        bridges,
        n=args.n,
        seed=args.seed,
        batch_size=args.batch_size,
        prompts=prompts,
        split=args.split,
        data_dir=args.data_dir,
        max_new_tokens=args.max_new_tokens,
        ranking=ranking,
        confidence=args.confidence,
        n_resamples=args.bootstrap,
        progress=not args.quiet,
        dictionary=dictionary,
        prefix_cache=args.prefix_cache,
        metric=args.metric,
    )
    return _finish(result, args, write_bli_results)


def cmd_mrc(args) -> int:
    from neuronoverlap.evaluation.mrc import evaluate_mrc, write_mrc_results
    from neuronoverlap.languages import get_language

    lang = get_language(args.lang).code
    bridges = _bridges(args, {lang})
    if lang in bridges:
        raise InputError(f"a bridge cannot be the passage language {lang}")
    ranking = _ranking(args, bridges)
    _check_run_options(args)
    if args.translation_max_new_tokens < 1:
        raise InputError(
            f"--translation-max-new-tokens must be at least 1, got {args.translation_max_new_tokens}"
        )
    prompts = _mrc_prompts(args)
    model = opt.model_source(args).load(args.store)
    result = evaluate_mrc(
        model,
        lang,
        bridges,
        question_lang=args.question_lang,
        n=args.n,
        seed=args.seed,
        batch_size=args.batch_size,
        prompts=prompts,
        data_dir=args.data_dir,
        max_new_tokens=args.max_new_tokens,
        translation_max_new_tokens=args.translation_max_new_tokens,
        reference=args.reference,
        ranking=ranking,
        confidence=args.confidence,
        n_resamples=args.bootstrap,
        progress=not args.quiet,
        scoring=args.scoring,
        prefix_cache=args.prefix_cache,
    )
    return _finish(result, args, write_mrc_results)


def run_evaluate(args) -> int:
    """Run `evaluate bli` or `evaluate mrc` from parsed arguments; returns the exit code."""
    task = getattr(args, "evaluate_task", None)
    if task == "bli":
        return cmd_bli(args)
    if task == "mrc":
        return cmd_mrc(args)
    raise InputError("evaluate needs a task: bli or mrc")
