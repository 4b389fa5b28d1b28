"""``python -m pure_rl.compare RUN_DIR [RUN_DIR ...] [--out compare.png] [--label NAME ...]``.

Draws held-out accuracy, PRM reward and steps per answer of several runs on one PNG and prints a table: held-out
accuracy before and after RL (graded by the verifier on gold answers), and the last-10-step means of PRM reward,
verifier accuracy on the training rollouts, steps per answer and the top-decile-wrong share. Runs of the same
label (e.g. three seeds of one credit form) are drawn in one colour and also averaged in a mean row.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from pure_rl.runlog import read_metrics

PANELS = (("heldout_accuracy", "held-out accuracy (verifier, gold answers)"), ("prm_reward", "PRM reward (return)"),
          ("mean_steps", "steps per answer"), ("accuracy", "verifier accuracy on rollouts"))
TAIL = ("prm_reward", "accuracy", "mean_steps", "prm_top_decile_wrong")


def tail_mean(records: list[dict], key: str, n: int = 10) -> float:
    xs = [r[key] for r in records if r.get(key) is not None][-n:]
    return sum(xs) / len(xs) if xs else math.nan


def run_row(run_dir: Path, label: str | None) -> dict[str, Any]:
    """One table row from a run folder (metrics.jsonl, summary.json when the run finished, config.yaml)."""
    records = read_metrics(run_dir / "metrics.jsonl")
    if not records:
        raise ValueError(f"{run_dir}: no metrics.jsonl (or it is empty); give a run folder written by pure_rl.train")
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else {}
    held = [r["heldout_accuracy"] for r in records if r.get("heldout_accuracy") is not None]
    row = {"run": str(run_dir), "label": label or summary.get("credit_form") or run_dir.name,
           "seed": summary.get("seed"), "steps": max(r["step"] for r in records),
           "heldout_before": held[0] if held else math.nan, "heldout_after": held[-1] if len(held) > 1 else math.nan,
           "wall_s": summary.get("wall_seconds", math.nan), "records": records}
    row.update({k: tail_mean(records, k) for k in TAIL})
    return row


def mean_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A mean row per label that has more than one run."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["label"]].append(r)
    out = []
    for label, rs in groups.items():
        if len(rs) > 1:
            keys = ("heldout_before", "heldout_after", "wall_s", *TAIL)
            out.append({"run": f"mean of {len(rs)}", "label": label, "seed": "-", "steps": rs[0]["steps"],
                        **{k: sum(r[k] for r in rs) / len(rs) for k in keys}})
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    cols = ("label", "seed", "steps", "heldout_before", "heldout_after", *TAIL, "wall_s")
    head = ("run", "seed", "steps", "held-out before", "held-out after", "PRM reward", "rollout acc",
            "steps/answer", "top-decile wrong", "wall s")
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(r["label"] for r in rows))
    colours = {lab: f"C{i}" for i, lab in enumerate(labels)}
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.6))
    for ax, (key, title) in zip(axes, PANELS):
        for r in rows:
            pts = [(m["step"], m[key]) for m in r["records"] if m.get(key) is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, color=colours[r["label"]], alpha=0.8, marker="o" if key == "heldout_accuracy" else None,
                        markersize=3, label=r["label"] if r is next(q for q in rows if q["label"] == r["label"]) else None)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pure_rl.compare", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders written by python -m pure_rl.train")
    parser.add_argument("--label", action="append", default=None, help="one label per run (default: credit form)")
    parser.add_argument("--out", type=Path, default=Path("compare.png"), help="PNG to write (default compare.png)")
    args = parser.parse_args(argv)
    if args.label and len(args.label) != len(args.runs):
        print(f"error: --label given {len(args.label)} times for {len(args.runs)} runs; give one per run or none",
              file=sys.stderr)
        return 2
    try:
        rows = [run_row(d, lab) for d, lab in zip(args.runs, args.label or [None] * len(args.runs))]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows + mean_rows(rows)))
    print(f"wrote {plot(rows, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
