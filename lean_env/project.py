"""Finding the Lean project (Mathlib + REPL build) and the commands that run Lean inside it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

from lean_env.types import LeanSetupError

SETUP_HINT = (
    "install elan (https://github.com/leanprover/elan), create a Lean project that requires mathlib and "
    "leanprover-community/repl on the same Lean version, run `lake exe cache get && lake build repl` in it, and "
    "point LEAN_PROJECT at it (or the verifier's project argument: reward.verifier_kwargs.project= for pure_rl.train, "
    "verifier_kwargs.project= for evals.run); lean_env/README.md walks through it"
)


def resolve_project(project: str | os.PathLike | None = None) -> Path:
    """The Lean project directory: ``project`` if given, else ``$LEAN_PROJECT``; a clear error if it is unusable."""
    raw = project if project is not None else os.environ.get("LEAN_PROJECT")
    if not raw:
        raise LeanSetupError(f"no Lean project configured (LEAN_PROJECT is unset): {SETUP_HINT}")
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        raise LeanSetupError(f"LEAN_PROJECT={str(raw)!r} is not a directory: {SETUP_HINT}")
    if not any((path / name).exists() for name in ("lakefile.lean", "lakefile.toml", "lean-toolchain")):
        raise LeanSetupError(f"LEAN_PROJECT={str(path)!r} has no lakefile or lean-toolchain: {SETUP_HINT}")
    return path


def require_executable(argv: list[str] | tuple[str, ...], what: str) -> None:
    """A LeanSetupError unless ``argv[0]`` is an existing file or on PATH."""
    if not argv:
        raise LeanSetupError(f"{what}: the command is empty")
    if not (shutil.which(argv[0]) or os.path.isfile(argv[0])):
        raise LeanSetupError(f"{what}: {argv[0]!r} is neither a file nor on PATH: {SETUP_HINT}")


def _lake() -> str:
    lake = shutil.which("lake")
    if not lake:
        raise LeanSetupError(f"`lake` is not on PATH: {SETUP_HINT}")
    return lake


def repl_command(project: Path) -> list[str]:
    """argv that starts the REPL in ``project``: ``$LEAN_REPL_CMD``, a built ``repl`` binary via ``lake env``, or ``lake exe repl``."""
    if os.environ.get("LEAN_REPL_CMD"):
        return shlex.split(os.environ["LEAN_REPL_CMD"])
    for binary in (project / ".lake/build/bin/repl", project / ".lake/packages/REPL/.lake/build/bin/repl",
                   project / ".lake/packages/repl/.lake/build/bin/repl"):
        if binary.is_file():
            return [_lake(), "env", str(binary)]
    return [_lake(), "exe", "repl"]


def lean_command(project: Path) -> list[str]:
    """argv prefix for a one-shot check in ``project``: ``lake env lean --json`` (file path appended)."""
    return [_lake(), "env", "lean", "--json"]


def lean_version(project: Path) -> str:
    """The toolchain named in ``lean-toolchain`` (e.g. ``leanprover/lean4:v4.26.0``), or ""."""
    path = project / "lean-toolchain"
    return path.read_text().strip() if path.is_file() else ""


def mathlib_revision(project: Path) -> str:
    """Mathlib's git revision from ``lake-manifest.json``, or "" when the project has no Mathlib dependency."""
    path = project / "lake-manifest.json"
    if not path.is_file():
        return ""
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError:
        return ""
    for package in manifest.get("packages", []):
        if package.get("name") == "mathlib":
            return str(package.get("rev", ""))
    return ""
