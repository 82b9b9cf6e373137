"""The embedded model's tokenizer, built from the GGUF file's own vocabulary.

The GGUF stores Gemma's SentencePiece-BPE vocabulary as tokens, scores (minus the merge rank)
and token types, without merges. Transformers' GGUF tokenizer conversion turns that into a
Unigram model (transformers 5.17) that its `GemmaTokenizer` then reloads as a BPE without merges,
which splits every word into single characters: the model then reads text it was never trained
on, and every activation and generation is wrong. Here the BPE is rebuilt as SentencePiece
defines it: every normal token is a merge of two shorter tokens, ranked by the merged token's
score; control tokens are special, user-defined tokens (newline and space runs) are matched
whole, bytes fall back to `<0xNN>` tokens, and `<bos>` is prepended.
"""

from __future__ import annotations

from pathlib import Path

NORMAL, CONTROL, USER_DEFINED = 1, 3, 4

#: A fixed sentence and its Gemma-3 token ids, checked after every conversion.
CHECK_TEXT = "The capital of France is"
CHECK_IDS = [2, 818, 5279, 529, 7001, 563]


def _merges(tokens: list[str], scores: list[float], types: list[int]) -> list[tuple[str, str]]:
    """SentencePiece-BPE merges: each normal token split into two vocabulary tokens, highest
    merged-token score first (then the left part's id, then the right part's)."""
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = []
    for token, score, kind in zip(tokens, scores, types, strict=True):
        if kind != NORMAL or len(token) < 2:
            continue
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            left_id, right_id = vocab.get(left), vocab.get(right)
            if left_id is None or right_id is None:
                continue
            if types[left_id] != NORMAL or types[right_id] != NORMAL:
                continue
            merges.append((-score, left_id, right_id, left, right))
    merges.sort()
    return [(left, right) for *_, left, right in merges]


def tokenizer_from_gguf(gguf_path: Path):
    """A `PreTrainedTokenizerFast` equal to Gemma's own, from the GGUF metadata alone."""
    import gguf
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    fields = gguf.GGUFReader(str(gguf_path)).fields
    tokens = list(fields["tokenizer.ggml.tokens"].contents())
    scores = [float(s) for s in fields["tokenizer.ggml.scores"].contents()]
    types = [int(t) for t in fields["tokenizer.ggml.token_type"].contents()]
    bos = tokens[int(fields["tokenizer.ggml.bos_token_id"].contents())]
    vocab = {t: i for i, t in enumerate(tokens)}
    backend = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=_merges(tokens, scores, types),
            unk_token="<unk>",
            fuse_unk=True,
            byte_fallback=True,
        )
    )
    backend.normalizer = normalizers.Replace(" ", "▁")
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    backend.add_special_tokens(
        [
            AddedToken(t, special=True, normalized=False)
            for t, k in zip(tokens, types, strict=True)
            if k == CONTROL
        ]
    )
    backend.add_tokens(
        [AddedToken(t, normalized=False) for t, k in zip(tokens, types, strict=True) if k == USER_DEFINED]
    )
    backend.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, vocab[bos])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=tokens[int(fields["tokenizer.ggml.eos_token_id"].contents())],
        unk_token=tokens[int(fields["tokenizer.ggml.unknown_token_id"].contents())],
        pad_token=tokens[int(fields["tokenizer.ggml.padding_token_id"].contents())],
        padding_side="left",
    )


def tokenizer_is_gemma(tokenizer) -> bool:
    """True when `tokenizer` splits `CHECK_TEXT` into Gemma-3's own token ids."""
    return list(tokenizer(CHECK_TEXT)["input_ids"]) == CHECK_IDS
