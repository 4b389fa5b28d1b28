"""Run outputs: metrics.jsonl (always), TensorBoard and Weights & Biases (when installed/configured), plots."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
PLOTTED = (("reward", "reward (train rollouts)"), ("heldout_accuracy", "held-out accuracy"),
           ("response_length", "response length (tokens)"), ("kl", "KL to reference"),
           ("prm_min_score", "PRM score (mean of each row's min step)"))
# Why a panel can be empty: (metric, config key, the value that leaves it empty, the note drawn instead).
EMPTY_BECAUSE = {"kl": ("credit.kl_coef", 0.0, "no KL term: credit.kl_coef=0\n(set it > 0 for a reference model)"),
                 "prm_min_score": ("reward.prm", "none", "no PRM: reward.prm=none")}


class RunLogger:
    """Appends one JSON object per step to ``metrics.jsonl`` and mirrors scalars to TensorBoard / W&B."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, wandb_project: str | None = None,
                 config: dict | None = None):
        self.path = run_dir / "metrics.jsonl"
        self.samples_path = run_dir / "samples.jsonl"
        self.tb = self.wandb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:
                log.info("tensorboard is not installed; logging to metrics.jsonl only")
        if wandb_project:
            try:
                import wandb

                self.wandb = wandb.init(project=wandb_project, dir=str(run_dir), config=config)
            except ImportError:
                log.warning("log.wandb_project is set but wandb is not installed; pip install wandb")

    def truncate_after(self, step: int) -> None:
        """Drop records newer than ``step`` (a resumed run rewrites the steps a killed run had logged)."""
        for path in (self.path, self.samples_path):
            if path.exists():
                kept = [line for line in path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
                path.write_text("".join(line + "\n" for line in kept))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        record = {"step": step, **{k: _jsonable(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        scalars = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def log_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        """One line per sampled rollout, to read what the policy writes and how it was scored."""
        with open(self.samples_path, "a") as f:
            for sample in samples:
                f.write(json.dumps({"step": step, **sample}) + "\n")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _run_config(run_dir: Path) -> Any:
    from omegaconf import OmegaConf

    path = run_dir / "config.yaml"
    try:
        return OmegaConf.load(path) if path.exists() else OmegaConf.create({})
    except Exception:  # noqa: BLE001  (a hand-edited config that does not parse must not stop the plot)
        return OmegaConf.create({})


def training_figure(run_dir: Path) -> Any:
    """The matplotlib figure of ``plot_run``: one panel per ``PLOTTED`` metric over integer steps, titled with the
    run's name and credit form; an empty panel says why when the config explains it (no KL term, no PRM)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    from omegaconf import OmegaConf

    records = read_metrics(run_dir / "metrics.jsonl")
    cfg = _run_config(run_dir)
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    for ax, (key, title) in zip(axes.flat, PLOTTED):
        pts = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o" if key == "heldout_accuracy" or len(pts) == 1 else None, markersize=3)
        elif key in EMPTY_BECAUSE and OmegaConf.select(cfg, EMPTY_BECAUSE[key][0]) == EMPTY_BECAUSE[key][1]:
            ax.text(0.5, 0.5, EMPTY_BECAUSE[key][2], ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(PLOTTED):]:
        ax.axis("off")
    form = OmegaConf.select(cfg, "credit.form") or "?"
    recipe = OmegaConf.select(cfg, "recipe")
    fig.suptitle(f"{run_dir.name}: credit.form={form}" + (f", recipe {Path(recipe).stem}" if recipe else ""))
    fig.tight_layout()
    return fig


def plot_run(run_dir: Path) -> Path:
    """training.png: reward, held-out accuracy, response length, KL and PRM score over steps."""
    import matplotlib.pyplot as plt

    fig = training_figure(run_dir)
    out = run_dir / "training.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
