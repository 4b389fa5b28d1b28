"""Entry point: ``python -m pure_rl.train [recipe=NAME] [key=value ...]``.

With no recipe the embedded default (``recipe=tiny``) runs: a tiny policy on the synthetic arithmetic task,
warm-started, then trained with PURE on a rule-based process reward plus the answer verifier, on a CPU.
"""

from __future__ import annotations

import logging
import sys

from pure_rl.config import ConfigError, help_text, load_config, to_yaml, validate_config


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        print("Fields (override any with key=value):")
        print(help_text())
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        cfg = load_config(argv, validate=validate_config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(to_yaml(cfg))
    from pure_rl.core.registry import RegistryError
    from pure_rl.models.loading import ModelLoadError
    from pure_rl.trainer import Trainer, TrainingStopped
    from pure_rl.validate import PluginOutputError

    try:
        trainer = Trainer(cfg)
    except (ModelLoadError, RegistryError, ConfigError, ValueError, OSError, ImportError) as exc:
        # ValueError: a component refused its arguments (a mistyped model name, a bad task kwarg, bad data rows, a
        # checkpoint of another model size); OSError: a file that cannot be read: one line, exit 2
        print(f"error: {_first_line(exc)}", file=sys.stderr)
        return 2
    try:
        summary = trainer.fit()
    except (TrainingStopped, PluginOutputError) as exc:  # a plugin broke its output contract, or the loss diverged
        print(f"error: {_first_line(exc)} (run folder: {trainer.run_dir})", file=sys.stderr)
        return 2
    print_summary(summary)
    return 0


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="PURE run summary")
    table.add_column("metric")
    table.add_column("value")
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v:.1f}s" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.4f}"
        table.add_row(key, str(value))
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
