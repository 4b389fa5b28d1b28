"""Reward models trained on first use and cached, like the tiny warm start: ``reward.prm_kwargs.train_recipe=NAME``.

The folder is keyed by a hash of the resolved ``python -m prm.train`` config (the recipe plus its overrides), so a
changed recipe trains a new model and an unchanged one is reused. Training writes into a temporary folder that is
renamed into place only when every stage finished, so an interrupted run never leaves a half-trained PRM behind.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def prm_cache_root() -> Path:
    from pure_rl.models.known import cache_root

    return cache_root() / "prm"


def trained_prm_dir(recipe: str, overrides: Sequence[str] = (), subfolder: str = "tvm") -> Path:
    """The trained model folder (``<run>/<subfolder>``) of ``python -m prm.train recipe=RECIPE *overrides``, trained now
    (data, train and eval stages) when the cache has no finished run for that exact config."""
    from prm.runtime import resolve_device
    from prm.train import KINDS, PRMTrainConfig, validate
    from pure_rl.core.configio import load_config, to_yaml
    from pure_rl.core.registry import import_string

    cfg = load_config([f"recipe={recipe}", *overrides], schema=PRMTrainConfig, validate=validate, cli="python -m prm.train")
    cfg.output_dir = None
    key = hashlib.sha256(to_yaml(cfg).encode()).hexdigest()[:12]
    run = prm_cache_root() / f"{Path(recipe).stem}-{key}"
    if (run / "summary.json").exists() and (run / subfolder).is_dir():
        log.info("reward model: cached %s", run / subfolder)
        return run / subfolder
    tmp = run.with_name(f"{run.name}.tmp-{time.time_ns()}")
    tmp.mkdir(parents=True)
    cfg.output_dir = str(tmp)
    t0 = time.time()
    log.info("reward model: training python -m prm.train recipe=%s %s (first use; cached in %s)", recipe,
             " ".join(overrides), run)
    try:
        (tmp / "config.yaml").write_text(to_yaml(cfg))
        import_string(KINDS[cfg.kind])(cfg, tmp, resolve_device(cfg.device))
        if run.exists():  # another process finished first: keep its model
            shutil.rmtree(tmp)
        else:
            tmp.rename(run)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("reward model: trained in %.0f s -> %s", time.time() - t0, run / subfolder)
    return run / subfolder
