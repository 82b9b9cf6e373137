"""`latent`: the logit-lens profile of a pair's translation prompts (which language the middle
layers put their mass on); `chain`: several bridges at once in a study folder (issue 27)."""

from __future__ import annotations

from neuronoverlap.cli import options as opt
from neuronoverlap.languages import DEFAULT_BRIDGES


def add_parsers(sub) -> None:
    p = opt.add_command(
        sub,
        "latent",
        run_latent,
        help="logit lens: which language the middle layers use when translating s -> t",
        description="On n source words of the s-t train dictionary (never test words), prompt the "
        "model with the validation study's direct BLI prompt (one-word lines, 5 examples), read "
        "each layer's residual at the last position through the final norm and unembedding, "
        "and sum the probability of the answer's tokens in the target, in English and in each "
        "candidate bridge (tokens spelling a prefix of a translation, Wendler et al. 2024). "
        "Prints per layer the mean over words with a bootstrap interval and the 'latent' rule "
        "(the candidate with the most mass over the latent layers L//2..L-2); writes "
        "OUT/latent-S-T.json and .png, and into --store's results when given. See docs/evaluation.md.",
    )
    opt.add_model_options(p)
    opt.add_data_option(p)
    opt.add_pair(p)
    opt.add_bridges(p)
    p.add_argument("-n", type=int, default=100, help="train words (default: 100)")
    p.add_argument("--shots", type=int, default=5, help="few-shot examples in each prompt (default: 5)")
    p.add_argument(
        "--window",
        default=None,
        help="the latent layers the rule averages, e.g. '9-16' (default: the second half of the "
        "model less its last layer, L//2..L-2)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of words (default: 1000)")
    opt.add_seed(p, "word sample, examples and bootstrap")
    p.add_argument("--out", default="out/latent", help="output folder (default: out/latent)")
    p.add_argument("--store", default=None, help="also keep the profile in this existing store's results")
    opt.add_run_options(p, batch=8)

    p = opt.add_command(
        sub,
        "chain",
        run_chain_command,
        help="several bridges at once: BLI through a rule's top-k bridges in one prompt",
        description="Chain-of-Dictionary style: in a `validate` output folder, prompt with the "
        "word's translations (the model's own step 1, from the study's cache) in the top-k bridges "
        "of a rule, under the study's protocol, and compare with the rule's first bridge alone "
        "and the best single bridge. Writes OUT/chain-RULE-kK.json. See docs/evaluation.md.",
    )
    opt.add_model_options(p)  # default: the model the study ran
    p.add_argument("--out", default="out/validate", help="the validate output folder (default: out/validate)")
    p.add_argument(
        "--rule",
        default="english",
        help="the ranking: english (English first, then the candidates' order), typology, hsic, "
        "or a predictor rule that validate --predictors stored (default: english)",
    )
    p.add_argument("-k", default="2,3", help="bridges per prompt, comma list (default: 2,3)")
    opt.add_seed(p, "bootstrap")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run_latent(args) -> int:
    import json
    from pathlib import Path

    from neuronoverlap.cli.checks import parse_window
    from neuronoverlap.languages import parse_languages, parse_pair
    from neuronoverlap.predictors.latent import latent_figure, latent_profile

    src, tgt = (lang.code for lang in parse_pair(args.pair))
    bridges = [b.code for b in parse_languages(args.bridges)]
    if args.bridges == ",".join(DEFAULT_BRIDGES):  # the default list: less the pair's own languages
        bridges = [b for b in bridges if b not in (src, tgt)]
    model = opt.model_source(args).load(args.store)
    profile = latent_profile(
        model,
        src,
        tgt,
        bridges,
        n=args.n,
        shots=args.shots,
        seed=args.seed,
        window=parse_window(args.window),
        n_bootstrap=args.bootstrap,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        progress=not args.quiet,
    )
    print(profile.table())
    path = Path(args.out) / f"{profile.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(profile.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    figure = path.with_suffix(".png")
    figure.write_bytes(latent_figure(profile))
    print(f"wrote {path} and {figure}")
    if args.store:
        from neuronoverlap.store import StoreWriter, schema

        with StoreWriter.for_existing(args.store) as writer:
            writer.put_json(schema.RESULTS, profile.key, profile.to_dict())
        print(f"kept in {args.store} as results/{profile.key}")
    return 0


def run_chain_command(args) -> int:
    import json
    from pathlib import Path

    from neuronoverlap.errors import InputError
    from neuronoverlap.evaluation.chain import (
        chain_table,
        compare_chain,
        load_runs,
        run_chain,
        study_config,
        study_rankings,
        top_bridges,
    )

    try:
        ks = [int(k) for k in args.k.split(",") if k.strip()]
    except ValueError:
        raise InputError(f"-k takes a comma list of integers, got {args.k!r}") from None
    runs = load_runs(args.out)
    rankings = study_rankings(args.out, args.rule, runs)
    for k in ks:  # every k checked before the model loads
        for name, r in runs.items():
            if name in rankings:
                top_bridges(rankings[name], r.bridges, k)
    config = study_config(args.out)
    source = opt.model_source(args)
    if source.spec is None:  # the model the study ran
        from neuronoverlap.pipeline.model import spec_of_name

        name = (json.loads((Path(args.out) / "validate.json").read_text(encoding="utf-8"))["model"] or {})[
            "name"
        ]
        source.spec = spec_of_name(name)
        if source.spec is None:
            raise InputError(f"the study ran {name!r}: pass --model with its checkpoint directory")
    model = source.load(None)
    for k in ks:
        chains = run_chain(model, runs, rankings, k, args.out, config, progress=not args.quiet)
        result = compare_chain(runs, chains, n_bootstrap=config.n_bootstrap, seed=args.seed)
        result.update(rule=args.rule, k=k)
        print(f"{args.rule}, top {k} bridges:")
        print(chain_table(result))
        path = Path(args.out) / f"chain-{args.rule}-k{k}.json"
        path.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0
