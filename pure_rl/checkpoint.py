"""Atomic checkpoints: written under a temporary name, verified by a manifest of checksums, then renamed.

Layout: ``<run>/checkpoints/step-000010/{model/, trainer_state.pt, manifest.json}``. A checkpoint without a
manifest, or whose files do not match it, is corrupt: ``latest_good`` skips it with a warning. A save that fails
(disk full, folder gone read-only) leaves nothing behind and only warns (``try_save_checkpoint``): the run goes on
and the next save retries. Which checkpoint a run resumes from is ``pure_rl.rundir``'s decision.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import re
import shutil
import time
from collections.abc import Iterator
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


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """No "Writing model shards" / "Loading weights" bars from transformers while saving or loading a checkpoint."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def save_checkpoint(ckpt_root: Path, step: int, model: Any, tokenizer: Any, trainer_state: dict, keep: int = 2) -> Path:
    """Write ``step-NNNNNN`` atomically and keep the ``keep`` most recent checkpoints."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / f"step-{step:06d}"
    tmp = ckpt_root / f".tmp-step-{step:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        with quiet_progress_bars():
            model.save_pretrained(tmp / "model")
            tokenizer.save_pretrained(tmp / "model")
        torch.save(trainer_state, tmp / "trainer_state.pt")
        manifest = {"step": step, "files": {str(p.relative_to(tmp)): _sha256(p) for p in _files(tmp)}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        for p in _files(tmp):
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed save leaves no partial folder behind
        raise
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    for old in list_checkpoints(ckpt_root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def try_save_checkpoint(ckpt_root: Path, step: int, *args: Any, **kwargs: Any) -> Path | None:
    """``save_checkpoint``, except that a failed write warns and returns None instead of ending the run."""
    try:
        return save_checkpoint(ckpt_root, step, *args, **kwargs)
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as RuntimeError
        log.warning("checkpoint of step %d could not be written to %s (%s: %s); training continues and the next "
                    "save retries", step, ckpt_root, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return None


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is one checkpoint folder (good or not), rather than a run or checkpoints folder."""
    return (path / MANIFEST).exists() or path.name.startswith("step-")


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    if not ckpt_root.is_dir():
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
    if is_checkpoint(path):
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

        adapter_state = load_file(adapter)
        # the model's keys carry the adapter name (lora_A.default.weight), the saved ones do not (lora_A.weight)
        own = {re.sub(r"(lora_[A-Za-z_]+)\.[^.]+\.", r"\1.", k): v for k, v in model.state_dict().items() if "lora_" in k}
        check_shapes(ckpt, adapter_state, own)
        set_peft_model_state_dict(model, adapter_state)
        return
    state: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        state.update(load_file(f))
    if not state:
        raise FileNotFoundError(f"no safetensors weights in {folder}")
    check_shapes(ckpt, state, model.state_dict())
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {k for k in missing if "lm_head" in k or "embed" in k}
    if unexpected or set(missing) - tied:
        raise RuntimeError(f"checkpoint {ckpt} does not match the model: missing {missing}, unexpected {unexpected}")
    if hasattr(model, "tie_weights"):
        model.tie_weights()


class CheckpointMismatch(ValueError):
    """The checkpoint was saved from a differently shaped model (another size, vocabulary or LoRA rank)."""


def check_shapes(ckpt: Path, saved: dict[str, torch.Tensor], current: dict[str, torch.Tensor]) -> None:
    """One line naming the first tensor whose saved shape differs from the model's, instead of a page of them."""
    differ = [(k, tuple(v.shape), tuple(current[k].shape)) for k, v in saved.items()
              if k in current and tuple(v.shape) != tuple(current[k].shape)]
    if differ:
        name, was, now = differ[0]
        raise CheckpointMismatch(
            f"checkpoint {ckpt} was saved from another model shape: {len(differ)} tensors differ (first: {name} "
            f"saved {list(was)}, this model {list(now)}); resume with the model settings of its run's config.yaml")


def trainer_state(trainer: Any) -> dict[str, Any]:
    """Everything besides the weights that a resumed run needs to continue bit-for-bit (optimiser, RNGs, data order)."""
    return {
        "step": trainer.step, "optimizer": trainer.optimizer.state_dict(), "scheduler": trainer.scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(), "data_rng": trainer.data_rng.getstate(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "bad_steps": trainer.bad_steps, "heldout_before": trainer.heldout_before, "jumps": trainer.jumps.state_dict(),
        "timings": dict(trainer.timings), "elapsed": trainer.elapsed_before + time.time() - trainer.started,
    }


def resume_trainer(trainer: Any, found: Path) -> None:
    """Load the checkpoint ``found`` (chosen by ``pure_rl.rundir.resume_checkpoint``) into ``trainer``."""
    load_model_weights(trainer.policy, found)
    state = torch.load(found / "trainer_state.pt", weights_only=False)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    trainer.data_rng.setstate(state["data_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    trainer.step, trainer.bad_steps = state["step"], state["bad_steps"]
    trainer.heldout_before = state["heldout_before"]
    trainer.jumps.load_state_dict(state["jumps"])
    trainer.timings.update(state["timings"])
    trainer.elapsed_before = state["elapsed"]
    trainer.engine.sync_weights(trainer.policy)
    trainer.logger.truncate_after(trainer.step)
    log.info("resumed from %s at step %d", found, trainer.step)
