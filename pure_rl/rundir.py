"""A run folder belongs to one run: what a new run, ``resume`` and ``overwrite=true`` may do with it.

- A folder that holds a run (config, metrics, summary or checkpoints) refuses a new run unless ``resume`` continues
  it or ``overwrite=true`` deletes it: two runs never share ``metrics.jsonl``, and ``resume=auto`` never picks up
  another run's checkpoint.
- ``resume=auto`` continues the newest good checkpoint of ``output_dir``; in a folder that holds a run but no good
  checkpoint it refuses instead of restarting over the old run (an empty or missing folder starts fresh).
- ``resume=PATH`` names a checkpoint (used as is, refused when corrupt: never silently another step) or a run /
  checkpoints folder (its newest good checkpoint).
- Partial checkpoints (``checkpoints/.tmp-*``, left by a save that was killed) are reported and removed at start.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

from pure_rl import checkpoint as ckpt
from pure_rl.core.configio import ConfigError
from pure_rl.core.outputs import writable_dir

log = logging.getLogger(__name__)
RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json")  # any of them (or a checkpoint) = the folder holds a run
RUN_OUTPUTS = (*RUN_FILES, "samples.jsonl", "training.png", "checkpoints", "tensorboard", "wandb")  # what overwrite deletes


class RunDirError(ConfigError):
    """The run folder cannot be used as asked; the message names the setting that would make it work."""


def default_run_dir(recipe: str | None) -> Path:
    return Path(f"runs/{Path(recipe or 'run').stem}-{time.strftime('%Y%m%d-%H%M%S')}")


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` already belongs to a run (a checkpoint of any state counts)."""
    if not folder.is_dir():
        return False
    root = folder / "checkpoints"
    return any((folder / name).exists() for name in RUN_FILES) or bool(ckpt.list_checkpoints(root))


def prepare_run_dir(output_dir: str | None, recipe: str | None, resume: str | None, overwrite: bool) -> Path:
    """The run folder, created and writable, with stale partial checkpoints removed; refuses a second run in it."""
    folder = Path(output_dir).expanduser() if output_dir else default_run_dir(recipe)
    if folder.exists() and not folder.is_dir():
        raise RunDirError(f"output_dir={str(folder)!r} is a file, not a folder; pass a folder path")
    if holds_run(folder) and resume and resume != "auto" and not _inside(Path(resume), folder):
        raise RunDirError(f"output_dir={str(folder)!r} holds a run and resume={resume} is not one of its checkpoints; "
                          "pass resume=auto to continue the run there, or another output_dir")
    if holds_run(folder) and not resume:
        if not overwrite:
            raise RunDirError(f"output_dir={str(folder)!r} holds a run already; pass resume=auto to continue it or "
                              "overwrite=true to delete it and start again")
        log.warning("overwrite=true: deleting the run in %s", folder)
        for name in RUN_OUTPUTS:  # the run's own outputs only: anything else the user keeps there stays
            target = folder / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    writable_dir(folder)
    remove_partial_checkpoints(folder / "checkpoints")
    return folder


def _inside(path: Path, folder: Path) -> bool:
    return path.expanduser().resolve().is_relative_to(folder.resolve())


def remove_partial_checkpoints(ckpt_root: Path) -> list[Path]:
    """Delete ``.tmp-*`` folders (a save killed mid-write) with one warning each; returns what was removed."""
    stale = sorted(ckpt_root.glob(".tmp-*")) if ckpt_root.is_dir() else []
    for path in stale:
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        log.warning("removing %s (%.1f MB): a checkpoint whose save was interrupted", path, size / 2**20)
        shutil.rmtree(path, ignore_errors=True)
    return stale


def resume_checkpoint(resume: str, run_dir: Path) -> Path | None:
    """The checkpoint ``resume`` names (see the module docstring); None = resume=auto in a folder without a run."""
    if resume == "auto":
        found = ckpt.latest_good(run_dir)
        if found is not None:
            return found
        if holds_run(run_dir):
            raise RunDirError(f"resume=auto: {run_dir} holds a run but no good checkpoint (all corrupt or none saved); "
                              "pass resume=<a checkpoint folder> or overwrite=true to start again")
        log.info("resume=auto: no run in %s yet, starting fresh", run_dir)
        return None
    path = Path(resume).expanduser()
    if not path.exists():
        raise RunDirError(f"resume={resume}: no such folder; pass a checkpoint (.../checkpoints/step-N), a run folder "
                          "or resume=auto")
    if ckpt.is_checkpoint(path):
        if not ckpt.is_good(path):
            raise RunDirError(f"resume={resume}: this checkpoint is corrupt or partial (its files do not match "
                              "manifest.json); pass another checkpoint, or its run folder for the newest good one")
        return path
    found = ckpt.latest_good(path)
    if found is None:
        raise RunDirError(f"resume={resume}: no good checkpoint in this folder")
    return found


def summary(trainer: Any, after: float | None) -> dict[str, Any]:
    """summary.json of the steps done; ``after`` is None when a signal stopped the run before the final evaluation."""
    cfg = trainer.cfg
    out = {
        "recipe": cfg.recipe, "seed": cfg.seed, "steps": trainer.step, "credit_form": cfg.credit.form,
        "heldout_accuracy_before": trainer.heldout_before, "heldout_accuracy_after": after,
        "heldout_size": len(trainer.heldout), "wall_seconds": trainer.elapsed_before + time.time() - trainer.started,
        "stage_seconds": dict(trainer.timings), "run_dir": str(trainer.run_dir),
    }
    if trainer.stop_requested:
        out["stopped_at"] = trainer.step
    return out
