"""Structured configs for every CLI: OmegaConf 2.4 merge (no Hydra), recipes that inherit, one-line errors, ``--help``.

``load_config(argv, schema)`` reads ``recipe=NAME key=value ...``: ``recipes/NAME.yaml`` (or a path), then the
dotlist, merged over the dataclass ``schema``. A recipe may open with ``base: OTHER``: it is merged over recipe
OTHER (recursively), so an ablation names only the keys it changes. Unknown keys fail with the closest valid key;
wrong types and bad values fail with the key's name; ``validate`` runs last. The schemas themselves live with
their CLIs (``pure_rl.config``, ``prm.train``, ``evals.config``).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
import sys
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

RECIPES_DIR = Path(__file__).resolve().parent.parent.parent / "recipes"
BASE_KEY = "base"  # a recipe's parent recipe


class ConfigError(ValueError):
    """A configuration problem, explained in one line."""


def check(cond: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``cond``."""
    if not cond:
        raise ConfigError(message)


def recipe_path(recipe: str) -> Path:
    """``recipes/NAME.yaml`` (searched recursively) or a path to a YAML file."""
    p = Path(recipe)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    matches = sorted(RECIPES_DIR.rglob(f"{recipe}.yaml"))
    if matches:
        return matches[0]
    known = sorted(q.stem for q in RECIPES_DIR.rglob("*.yaml"))
    close = difflib.get_close_matches(recipe, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"recipe {recipe!r} not found; known recipes: {', '.join(known)}.{hint}")


def load_recipe(recipe: str, _chain: tuple[Path, ...] = ()) -> DictConfig:
    """The recipe's keys with its ``base:`` chain merged underneath (the child wins), ``base`` itself removed."""
    path = recipe_path(recipe).resolve()
    if path in _chain:
        cycle = " -> ".join(p.stem for p in (*_chain, path))
        raise ConfigError(f"recipe {_chain[0].stem!r}: base recipes form a cycle ({cycle})")
    try:
        layer = OmegaConf.load(path)
    except Exception as exc:  # a YAML syntax error: say which file
        raise ConfigError(f"recipe {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(layer, DictConfig):
        raise ConfigError(f"recipe {path} must be a mapping of keys, got a {type(layer).__name__}")
    if BASE_KEY not in layer:
        return layer
    base = layer.pop(BASE_KEY)
    if not isinstance(base, str) or not base:
        raise ConfigError(f"recipe {path}: base must name another recipe, got {base!r}")
    return OmegaConf.merge(load_recipe(base, (*_chain, path)), layer)


def all_keys(schema: type, prefix: str = "") -> list[str]:
    """Every dotted key of the schema (sections and leaves)."""
    keys = []
    instance = schema()
    for f in dataclasses.fields(schema):
        keys.append(prefix + f.name)
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            keys.extend(all_keys(type(value), prefix + f.name + "."))
    return keys


def load_config(
    argv: list[str] | None,
    schema: type,
    default_recipe: str | None = None,
    validate: Callable[[Any], None] | None = None,
    cli: str = "python -m pure_rl.train",
) -> Any:
    """Parse ``recipe=NAME key=value ...`` into a ``schema`` instance, then run ``validate`` on it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} is not of the form key=value (try --help)")
    recipe = next((a.split("=", 1)[1] for a in argv if a.startswith("recipe=")), default_recipe)
    dotlist = [a for a in argv if not a.startswith("recipe=")]
    base = OmegaConf.structured(schema)
    layers: list[DictConfig] = [load_recipe(recipe)] if recipe else []
    layers.append(OmegaConf.from_dotlist(dotlist))
    try:
        merged = OmegaConf.merge(base, *layers)
        if recipe and "recipe" in merged:
            merged.recipe = recipe
        cfg = OmegaConf.to_object(merged)
    except ConfigKeyError as exc:
        raise ConfigError(_unknown_key_message(exc, schema, cli)) from exc
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise ConfigError(f"bad value for {key}: {str(exc).splitlines()[0]}") from exc
    if validate is not None:
        validate(cfg)
    return cfg


def _unknown_key_message(exc: ConfigKeyError, schema: type, cli: str) -> str:
    full_key = getattr(exc, "full_key", None) or str(getattr(exc, "key", "?"))
    close = difflib.get_close_matches(full_key, all_keys(schema), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown config key {full_key!r}{hint} ({cli} --help lists every key)"


def check_registered(entries: list[tuple[Any, str | None, str]]) -> None:
    """(registry, name, config key) triples: an unknown name is a ConfigError naming the key (None = unset)."""
    from pure_rl.core.registry import RegistryError

    for reg, name, key in entries:
        if name is None:
            continue
        try:
            reg.check(name)
        except RegistryError as exc:
            raise ConfigError(f"{key}: {exc}") from exc


def field_comments(schema: type) -> dict[str, str]:
    """The trailing ``# comment`` of each field in a dataclass's source."""
    comments = {}
    for line in inspect.getsource(schema).splitlines():
        m = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.*)$", line)
        if m:
            comments[m.group(1)] = m.group(2)
    return comments


def help_text(schema: type, prefix: str = "") -> str:
    """Every field with its default and comment, section by section."""
    lines = []
    comments = field_comments(schema)
    instance = schema()
    for f in dataclasses.fields(schema):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            lines.append(f"\n[{prefix}{f.name}]")
            lines.append(help_text(type(value), prefix + f.name + "."))
        else:
            lines.append(f"  {prefix}{f.name} = {value!r}  # {comments.get(f.name, '')}")
    return "\n".join(lines)


def to_yaml(cfg: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
