"""The import directions of ``DESIGN.md``, checked on every project file (lazy imports inside functions count too).

    entry points / trainer (pure_rl.*)  ->  plugins (prm, lean_env, evals)  ->  pure_rl.models  ->  pure_rl.core
                                                                                     |-> kernels (ops only)
A new file that imports across a boundary the wrong way fails here with the file, line and module it imported.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("pure_rl", "prm", "lean_env", "evals", "kernels")
# Plugin -> plugin edges that are allowed, each for a reason: evals' miniF2F task uses lean_env's loader and proof
# extraction; the arithmetic PRM and the classifier-PRM data generator check steps of the arithmetic task.
PLUGIN_EDGES = {("evals", "lean_env"), ("prm", "evals")}


def _group(module: str) -> str | None:
    """The layer a project module belongs to: core, models, trainer (the rest of pure_rl) or a top-level package."""
    top = module.split(".")[0]
    if top not in PROJECT:
        return None
    if top == "pure_rl":
        second = module.split(".")[1] if "." in module else ""
        return {"core": "core", "models": "models"}.get(second, "trainer")
    return top


ALLOWED = {
    "core": {"core"},
    "kernels": {"kernels"},
    "models": {"models", "core", "kernels"},
    "lean_env": {"lean_env", "core", "models"},
    "prm": {"prm", "core", "models"},
    "evals": {"evals", "core", "models"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import statement in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the file's package
                package = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
                base = ".".join(package)
                out.append((node.lineno, f"{base}.{node.module}" if node.module else base))
            elif node.module:
                out.append((node.lineno, node.module))
                out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module in PROJECT]
    return out


def _project_files() -> list[Path]:
    return sorted(p for top in PROJECT for p in (ROOT / top).rglob("*.py"))


def _module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_every_project_file_is_checked():
    files = _project_files()
    assert len(files) > 100 and any(f.name == "trainer.py" for f in files)


@pytest.mark.parametrize("path", _project_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    layer = _group(_module_of(path))
    allowed = ALLOWED.get(layer)
    if allowed is None:
        return  # the trainer and the entry points may import any layer
    bad = []
    for line, module in _imports(path):
        target = _group(module)
        if target is None or target in allowed or (layer, target) in PLUGIN_EDGES:
            continue
        bad.append(f"{path.relative_to(ROOT)}:{line} imports {module} ({layer} -> {target})")
    assert not bad, "; ".join(bad)


def test_the_rules_catch_a_violation(tmp_path):
    probe = tmp_path / "probe.py"  # as if it lived in lean_env/: a lazy import of evals and of the trainer
    probe.write_text("def f():\n    from evals.records import x\n    import pure_rl.trainer\n")
    found = [_group(m) for _, m in _imports(probe)]
    assert found == ["evals", "trainer"]
    assert ("lean_env", "evals") not in PLUGIN_EDGES and "trainer" not in ALLOWED["lean_env"]
