"""Atomic checkpoints: written under a temporary name, verified by a manifest of checksums, then renamed.

Layout: ``<run>/checkpoints/step-000010/{model/, trainer_state.pt, manifest.json}``. A checkpoint without a
manifest, or whose files do not match it, is corrupt: ``latest_good`` skips it with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def save_checkpoint(ckpt_root: Path, step: int, model: Any, tokenizer: Any, trainer_state: dict, keep: int = 2) -> Path:
    """Write ``step-NNNNNN`` atomically and keep the ``keep`` most recent checkpoints."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"step-{step:06d}"
    tmp = ckpt_root / f".tmp-step-{step:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model.save_pretrained(tmp / "model")
    tokenizer.save_pretrained(tmp / "model")
    torch.save(trainer_state, tmp / "trainer_state.pt")
    manifest = {"step": step, "files": {str(p.relative_to(tmp)): _sha256(p) for p in _files(tmp)}}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    for p in _files(tmp):
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    for old in list_checkpoints(ckpt_root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    if not ckpt_root.exists():
        return []
    return sorted(p for p in ckpt_root.iterdir() if p.is_dir() and p.name.startswith("step-"))


def is_good(ckpt: Path) -> bool:
    manifest_path = ckpt / MANIFEST
    if not manifest_path.exists():
        return False
    try:
        manifest = json.loads(manifest_path.read_text())
        return all((ckpt / name).exists() and _sha256(ckpt / name) == digest for name, digest in manifest["files"].items())
    except (OSError, ValueError, KeyError):
        return False


def latest_good(path: Path) -> Path | None:
    """The newest verified checkpoint under a run folder or checkpoints folder (or ``path`` itself)."""
    if (path / MANIFEST).exists() or path.name.startswith("step-"):
        if is_good(path):
            return path
        log.warning("checkpoint %s is corrupt or partial; looking for an earlier one", path)
        path = path.parent
    root = path / "checkpoints" if (path / "checkpoints").exists() else path
    for ckpt in reversed(list_checkpoints(root)):
        if is_good(ckpt):
            return ckpt
        log.warning("checkpoint %s is corrupt or partial; falling back to the previous one", ckpt)
    return None


def load_model_weights(model: Any, ckpt: Path) -> None:
    """Load the saved weights (full model or peft adapter) into ``model`` in place."""
    from safetensors.torch import load_file

    folder = ckpt / "model"
    adapter = folder / "adapter_model.safetensors"
    if adapter.exists():
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(adapter))
        return
    state: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        state.update(load_file(f))
    if not state:
        raise FileNotFoundError(f"no safetensors weights in {folder}")
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {k for k in missing if "lm_head" in k or "embed" in k}
    if unexpected or set(missing) - tied:
        raise RuntimeError(f"checkpoint {ckpt} does not match the model: missing {missing}, unexpected {unexpected}")
    if hasattr(model, "tie_weights"):
        model.tie_weights()
