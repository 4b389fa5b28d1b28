"""Evaluation outputs in one folder: ``predictions.jsonl``, ``metrics.json``, ``report.md`` and ``report.png``.

Public API (stable; ``evals.run`` uses it):

- ``PredictionLog(path)``: append-only ``predictions.jsonl``, one problem per line, fsynced per write;
  ``.load() -> dict[key, record]`` reads what an interrupted run left (a torn last line is dropped and the file
  trimmed to its last complete line, so the evaluation resumes from there); ``record_key(record)`` = ``split/id``.
- ``write_metrics(path, metrics)``; ``render_markdown(metrics, records, settings) -> str`` (every rate in percent);
  ``plot(metrics, path) -> Path | None`` (pass@k curve with 95% CIs per split, accuracy by subject and level, on a
  0-100% axis so one problem reads as well as a thousand); ``report_figure(metrics)`` is its figure.
- ``write_outputs(out_dir, metrics, records, settings)``: all three files at once.

A record: ``{"id", "split", "prompt", "gold", "meta", "samples": [{"text", "extracted", "answer_key", "outcome",
"reason", "time_s", ...}], "conventions": {name: bool}}``; ``conventions`` holds other graders' verdicts on the first
sample (lm-eval strict / flexible, plain math-verify), whose disagreements with ours the report lists.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PREDICTIONS = "predictions.jsonl"
METRICS = "metrics.json"
REPORT_MD = "report.md"
REPORT_PNG = "report.png"
_CELL = 40


def record_key(record: Mapping[str, Any]) -> str:
    """``split/id``: miniF2F names are unique per split only, so the split is part of the key."""
    return f"{record.get('split', '')}/{record['id']}"


class PredictionLog:
    """``predictions.jsonl`` written one complete line per problem, so a killed run loses at most the line in flight."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def load(self) -> dict[str, dict[str, Any]]:
        """Records already written, by ``record_key``; a torn or unparsable tail is cut off the file."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        records: dict[str, dict[str, Any]] = {}
        good_end = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            if not isinstance(record, dict) or "id" not in record or "samples" not in record:
                break
            records[record_key(record)] = record
            good_end += len(line)
        if good_end < len(data):
            with self.path.open("r+b") as fh:
                fh.truncate(good_end)
        return records

    def append(self, records: Sequence[Mapping[str, Any]]) -> None:
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def write_metrics(path: str | os.PathLike, metrics: Mapping[str, Any]) -> None:
    Path(path).write_text(json.dumps(_finite(metrics), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _finite(value: Any) -> Any:
    """NaN / inf -> None, so metrics.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _cell(value: Any, width: int = _CELL) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def _fmt(metric: Mapping[str, Any] | None) -> str:
    if not metric or metric.get("value") is None:
        return "–"
    low, high = metric["ci95"]
    return f"{100 * metric['value']:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def metric_names(metrics: Mapping[str, Any]) -> list[str]:
    """``accuracy``, then ``pass@k`` and ``maj@k`` in order of k."""
    names = [m for m in metrics if m.startswith(("pass@", "maj@"))]
    return ["accuracy"] + sorted(names, key=lambda m: (int(m.split("@")[1]), m.startswith("maj")))


def _counts_line(m: Mapping[str, Any]) -> str:
    return (f"{m['problems']} problems ({m['problems_judged']} judged), {m['samples']} samples, "
            f"{m['samples_graded']} graded, {m['timeouts']} timeouts, {m['infra_failures']} infrastructure failures")


def _group_tables(metrics: Mapping[str, Any], names: list[str]) -> list[str]:
    lines = []
    for key in sorted(k for k in metrics if k.startswith("by_")):
        lines += ["", f"## By {key[3:]}", "", f"| {key[3:]} | problems | " + " | ".join(names) + " | timeouts | infra |",
                  "|---|---:|" + "---:|" * len(names) + "---:|---:|"]
        for group, m in metrics[key].items():
            cells = " | ".join(_fmt(m.get(n)) for n in names)
            lines.append(f"| {_cell(group)} | {m['problems']} | {cells} | {m['timeouts']} | {m['infra_failures']} |")
    return lines


def _disagreements(records: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    names: list[str] = sorted({n for r in records for n in (r.get("conventions") or {})})
    if not names:
        return []
    for r in records:
        conv = r.get("conventions") or {}
        first = r["samples"][0] if r["samples"] else None
        if first is None or first["outcome"] not in ("correct", "wrong"):
            continue
        ours = first["outcome"] == "correct"
        if any(n in conv and conv[n] is not None and bool(conv[n]) != ours for n in names):
            rows.append((r, first, ours, conv))
    lines = ["", "## Grading conventions", "",
             "Other graders' verdicts on each problem's first sample; rows where one disagrees with ours.", "",
             "| convention | accuracy (%) | agrees with ours (%) |", "|---|---:|---:|"]
    for n in names:
        judged = [(bool(r["conventions"][n]), r["samples"][0]["outcome"] == "correct") for r in records
                  if (r.get("conventions") or {}).get(n) is not None and r["samples"]
                  and r["samples"][0]["outcome"] in ("correct", "wrong")]
        if judged:
            acc = sum(c for c, _ in judged) / len(judged)
            agree = sum(c == o for c, o in judged)
            lines.append(f"| {n} | {100 * acc:.1f} | {100 * agree / len(judged):.1f} ({agree} of {len(judged)}) |")
    lines += ["", f"{len(rows)} disagreement(s).", ""]
    if rows:
        lines += ["| id | gold | extracted | ours | " + " | ".join(names) + " |", "|---|---|---|---|" + "---|" * len(names)]
        for r, first, ours, conv in rows:
            flags = " | ".join("–" if conv.get(n) is None else str(int(bool(conv[n]))) for n in names)
            lines.append(f"| {_cell(r['id'])} | {_cell(r.get('gold'), 24)} | {_cell(first.get('extracted'), 24)} "
                         f"| {int(ours)} | {flags} |")
    return lines


def _problem_table(records: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["", "## Per problem", "", "| id | split | gold | first answer | correct of graded | outcomes |",
             "|---|---|---|---|---:|---|"]
    for r in records:
        samples = r["samples"]
        graded = [s for s in samples if s["outcome"] in ("correct", "wrong")]
        correct = sum(s["outcome"] == "correct" for s in graded)
        tally: dict[str, int] = {}
        for s in samples:
            tally[s["outcome"]] = tally.get(s["outcome"], 0) + 1
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(tally.items()))
        first = samples[0].get("extracted") if samples else None
        gold = "(proof)" if "formal_statement" in (r.get("meta") or {}) else r.get("gold")
        lines.append(f"| {_cell(r['id'])} | {_cell(r.get('split'), 12)} | {_cell(gold, 24)} | {_cell(first, 24)} "
                     f"| {correct} of {len(graded)} | {outcomes} |")
    return lines


def render_markdown(metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                    settings: Mapping[str, Any]) -> str:
    """The human-readable report: settings, headline metrics with 95% CIs, groups, conventions, per-problem table."""
    names = metric_names(metrics)
    lines = [f"# Evaluation: {settings.get('task')} — {settings.get('model')}", "",
             "Command: `" + str(settings.get("command", "")) + "`", "",
             "| setting | value |", "|---|---|"]
    for key in ("task", "model", "engine", "split", "n", "temperature", "top_p", "max_tokens", "prompt", "verifier"):
        if key in settings:
            lines.append(f"| {key} | {_cell(settings[key], 80)} |")
    lines += ["", "## Metrics (percent; 95% CI over problems: Wilson when each problem is right or wrong, else bootstrap)", "",
              _counts_line(metrics) + ".",
              "Timeouts and infrastructure failures are excluded from every denominator, never counted as wrong.", "",
              "| metric | value (%) [95% CI] | problems |", "|---|---|---:|"]
    for n in names:
        m = metrics.get(n) or {}
        lines.append(f"| {n} | {_fmt(m)} | {m.get('problems', 0)} |")
    timing = metrics.get("timing") or {}
    if timing:
        lines += ["", "Timing: " + ", ".join(f"{k} {v:.2f}" for k, v in timing.items() if isinstance(v, (int, float)))]
    lines += _group_tables(metrics, names)
    lines += _disagreements(records)
    lines += _problem_table(records)
    return "\n".join(lines) + "\n"


def _pass_curve(ax: Any, metrics: Mapping[str, Any]) -> bool:
    series = {"all": metrics}
    series.update(metrics.get("by_split") or {})
    drawn = False
    for label, m in series.items():
        pts = sorted((int(k.split("@")[1]), v) for k, v in m.items() if k.startswith("pass@") and v.get("value") is not None)
        if not pts:
            continue
        ks = [k for k, _ in pts]
        vals = [100 * v["value"] for _, v in pts]
        err = [[100 * (v["value"] - v["ci95"][0]) for _, v in pts], [100 * (v["ci95"][1] - v["value"]) for _, v in pts]]
        ax.errorbar(ks, vals, yerr=err, marker="o", capsize=3, label=label)
        drawn = True
    ax.set_xscale("log", base=2)
    ticks = sorted({int(k.split("@")[1]) for k in metrics if k.startswith("pass@")})
    ax.set_xticks(ticks, [str(k) for k in ticks])
    if len(ticks) == 1:  # one point: a readable window around it instead of matplotlib's +-0.04% zoom
        ax.set_xlim(ticks[0] / 2, ticks[0] * 2)
    ax.set_ylim(0, 100)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (%)")
    ax.set_title("pass@k (95% CI)")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend()
    return drawn


def _bars(ax: Any, groups: Mapping[str, Any], title: str) -> None:
    labels = list(groups)
    vals = [100 * (groups[g]["accuracy"]["value"] or 0.0) for g in labels]
    cis = [groups[g]["accuracy"]["ci95"] or [0.0, 0.0] for g in labels]
    err = [[max(0.0, v - 100 * c[0]) for v, c in zip(vals, cis)], [max(0.0, 100 * c[1] - v) for v, c in zip(vals, cis)]]
    ax.bar(range(len(labels)), vals, yerr=err, capsize=3, color="tab:blue", alpha=0.8)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")


def report_figure(metrics: Mapping[str, Any]) -> Any:
    """The figure of ``plot``: pass@k curve (overall and per split) and, when present, accuracy by subject / level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ["pass"] + [k for k in ("by_subject", "by_level") if metrics.get(k)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "pass":
            _pass_curve(ax, metrics)
        else:
            _bars(ax, metrics[panel], f"accuracy by {panel[3:]} (95% CI)")
    fig.tight_layout()
    return fig


def plot(metrics: Mapping[str, Any], path: str | os.PathLike) -> Path | None:
    """PNG of ``report_figure``."""
    import matplotlib.pyplot as plt

    fig = report_figure(metrics)
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def write_outputs(out_dir: str | os.PathLike, metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                  settings: Mapping[str, Any]) -> dict[str, Path]:
    """metrics.json, report.md and report.png in ``out_dir``; returns their paths."""
    out = Path(out_dir)
    paths = {"metrics": out / METRICS, "report": out / REPORT_MD, "plot": out / REPORT_PNG}
    write_metrics(paths["metrics"], {"settings": dict(settings), **metrics})
    paths["report"].write_text(render_markdown(metrics, records, settings), encoding="utf-8")
    plot(metrics, paths["plot"])
    return paths
