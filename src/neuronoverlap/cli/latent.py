"""`latent`: the logit-lens profile of a pair's translation prompts (which language the middle
layers put their mass on)."""

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
        "(the candidate with the most mass over the middle layers); writes "
        "OUT/latent-S-T.json, and into --store's results when given. See docs/evaluation.md.",
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
        help="the middle layers, e.g. '6-11' (default: the HSIC selection's window, fractions "
        "10/32..22/32 of depth)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of words (default: 1000)")
    opt.add_seed(p, "word sample, examples and bootstrap")
    p.add_argument("--out", default="out/latent", help="output folder (default: out/latent)")
    p.add_argument("--store", default=None, help="also keep the profile in this existing store's results")
    opt.add_run_options(p, batch=8)


def run_latent(args) -> int:
    import json
    from pathlib import Path

    from neuronoverlap.cli.checks import parse_window
    from neuronoverlap.languages import parse_languages, parse_pair
    from neuronoverlap.predictors.latent import latent_profile

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
    print(f"wrote {path}")
    if args.store:
        from neuronoverlap.store import StoreWriter, schema

        with StoreWriter.for_existing(args.store) as writer:
            writer.put_json(schema.RESULTS, profile.key, profile.to_dict())
        print(f"kept in {args.store} as results/{profile.key}")
    return 0
