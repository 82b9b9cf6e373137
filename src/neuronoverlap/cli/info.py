"""`info` (a model and one greedy translation) and `languages` (the codes the toolkit knows)."""

from __future__ import annotations

from neuronoverlap.cli import options as opt


def add_parsers(sub) -> None:
    p = opt.add_command(
        sub,
        "info",
        run_info,
        help="describe a model and show one greedy translation",
        description="Print the model's name, layers, d_mlp, neurons in all, MLP "
        "activation function and fingerprint, the torch threads it computes with (and why: "
        "--threads, NEURONOVERLAP_THREADS, OMP_NUM_THREADS or the cores this process may use), "
        "and its greedy completion of a translation prompt.",
    )
    opt.add_model_options(p)
    p.add_argument(
        "--prompt",
        default="English: dog\nDeutsch:",
        help="prompt to complete (default: a one-word English->German line)",
    )
    p.add_argument("--max-new-tokens", type=int, default=12, help="tokens to generate (default: 12)")

    opt.add_command(
        sub,
        "languages",
        run_languages,
        help="list the language codes, names, scripts and families",
        description="The languages the toolkit knows (ISO 639-1 code, English name, endonym, "
        "FLORES-200 code, script, family and genus); every --pair, --bridges and --langs takes "
        "these codes.",
    )


def run_info(args) -> int:
    from neuronoverlap.models import StopRule, generate_greedy
    from neuronoverlap.threads import ensure_threads
    from neuronoverlap.versions import library_versions

    model = opt.model_source(args).load()
    print(f"model:          {model.name}")
    print(f"fingerprint:    {model.fingerprint()}")
    print(f"layers:         {model.n_layers}")
    print(f"d_mlp:          {model.d_mlp}")
    print(f"neurons:        {model.n_neurons}")
    print(f"activation:     {model.activation_name} (neuron = act_fn(blocks.l.mlp.hook_pre))")
    print(f"device, dtype:  {model.device}, {str(model.dtype).removeprefix('torch.')}")
    print(f"generation:     {model.kv_cache_status}")
    print(f"threads:        {ensure_threads().describe()}")
    print("libraries:      " + ", ".join(f"{k} {v}" for k, v in library_versions().items()))
    gen = generate_greedy(model, [args.prompt], StopRule(max_new_tokens=args.max_new_tokens))[0]
    print(f"prompt:         {args.prompt!r}")
    print(f"greedy:         {gen.text!r}")
    return 0


def run_languages(args) -> int:
    from neuronoverlap.languages import get_language, known_codes

    print(f"{'code':4}  {'name':10}  {'endonym':16}  {'FLORES-200':10}  {'script':6}  family / genus")
    for code in known_codes():
        lang = get_language(code)
        print(
            f"{lang.code:4}  {lang.name:10}  {lang.endonym:16}  {lang.flores:10}  {lang.script:6}  "
            f"{lang.family} / {lang.genus}"
        )
    return 0
