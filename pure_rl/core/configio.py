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
import logging
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

log = logging.getLogger(__name__)
RECIPES_DIR = Path(__file__).resolve().parent.parent.parent / "recipes"
BASE_KEY = "base"  # a recipe's parent recipe


class ConfigError(ValueError):
    """A configuration problem, explained in one line."""


def check(cond: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``cond``."""
    if not cond:
        raise ConfigError(message)


def recipe_path(recipe: str) -> Path:
    """``recipes/NAME.yaml`` (searched recursively) or a path to a YAML file (absolute, relative, ``.yaml`` optional)."""
    p = Path(recipe).expanduser()
    # "dir/name" may leave out .yaml; a bare name is looked up in recipes/ (a file of that name in cwd does not shadow it)
    for candidate in (p, p.with_name(p.name + ".yaml")) if len(p.parts) > 1 else (p,):
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            return candidate
    if p.is_absolute():  # rglob refuses absolute patterns; an absolute path is a file or nothing
        raise ConfigError(f"recipe {recipe!r}: no such YAML file (a recipe is a name in {RECIPES_DIR} or a path to a .yaml)")
    matches = sorted(RECIPES_DIR.rglob(f"{recipe.removesuffix('.yaml')}.yaml"))
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
    components: Sequence[tuple[str, str]] = (),
) -> Any:
    """Parse ``recipe=NAME key=value ...`` into a ``schema`` instance, then run ``validate`` on it.

    ``components`` pairs a component's name key with its kwargs key (``("task.name", "task.kwargs")``): the kwargs
    belong to the component, so naming another one on the command line drops the recipe's kwargs, and a whole
    ``KWARGS={...}`` on the command line replaces the recipe's instead of merging into them (``KWARGS={}`` clears).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} is not of the form key=value (try --help)")
    recipe = next((a.split("=", 1)[1] for a in argv if a.startswith("recipe=")), default_recipe)
    dotlist = [a for a in argv if not a.startswith("recipe=")]
    base = OmegaConf.structured(schema)
    layers: list[DictConfig] = [load_recipe(recipe)] if recipe else []
    layers.append(OmegaConf.from_dotlist(dotlist))
    if recipe and components:
        _give_kwargs_to_their_component(base, layers[0], dotlist, components)
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


def _give_kwargs_to_their_component(base: DictConfig, recipe: DictConfig, dotlist: list[str],
                                    components: Sequence[tuple[str, str]]) -> None:
    """Drop the recipe's kwargs of a component the command line swaps or whose kwargs it sets whole (in place)."""
    assigned = {arg.split("=", 1)[0].strip(): arg.split("=", 1)[1] for arg in dotlist}
    for name_key, kwargs_key in components:
        old_kwargs = OmegaConf.select(recipe, kwargs_key, default=None)
        if not old_kwargs:
            continue
        old_name = OmegaConf.select(recipe, name_key, default=OmegaConf.select(base, name_key, default=None))
        if kwargs_key in assigned:
            _drop(recipe, kwargs_key)
        elif name_key in assigned and assigned[name_key] != str(old_name):
            _drop(recipe, kwargs_key)
            log.info("%s=%s replaces the recipe's %s: its %s %s no longer apply (set %s.KEY=... for the new one)",
                     name_key, assigned[name_key], old_name, kwargs_key,
                     OmegaConf.to_container(old_kwargs), kwargs_key)


def _drop(layer: DictConfig, dotted: str) -> None:
    parent_key, _, leaf = dotted.rpartition(".")
    parent = OmegaConf.select(layer, parent_key) if parent_key else layer
    del parent[leaf]


def check_component_kwargs(entries: Sequence[tuple[Any, str | None, Mapping[str, Any], str]],
                           supplied: Mapping[str, Sequence[str]] | None = None) -> None:
    """(registry, name, kwargs, kwargs key) quadruples: every kwarg must be a parameter of the component's constructor.

    The registry entry is resolved (imported) but nothing is built, so a typo fails before any model loads, naming
    the closest parameter. ``supplied`` maps a kwargs key to the arguments its caller passes itself (an engine's
    ``model``): those may not be set again. A constructor that takes ``**kwargs`` accepts any name.
    """
    from pure_rl.core.registry import RegistryError

    for reg, name, kwargs, key in entries:
        if name is None:
            continue
        try:
            target = reg.get(name)
        except RegistryError as exc:
            raise ConfigError(f"{key.rsplit('.', 1)[0]}: cannot use {name!r}: {exc}") from exc
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):  # not introspectable (a C extension): building it will tell
            continue
        own = set((supplied or {}).get(key, ()))
        for arg in kwargs:
            if arg in own:
                raise ConfigError(f"{key}.{arg}: {name} gets {arg!r} from the trainer; remove it from {key}")
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            continue
        valid = [n for n, p in params.items() if n not in own and n != "self"
                 and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
        for arg in kwargs:
            if arg not in valid:
                close = difflib.get_close_matches(arg, valid, n=1, cutoff=0.5)
                hint = f"did you mean {key}.{close[0]}? " if close else ""
                listed = ", ".join(valid) if valid else "none"
                raise ConfigError(f"{key}.{arg}: {name} has no argument {arg!r}; {hint}(its arguments: {listed})")
        missing = [n for n, p in params.items() if n in valid and p.default is inspect.Parameter.empty
                   and n not in kwargs]
        if missing:
            raise ConfigError(f"{key}: {name} needs {', '.join(repr(m) for m in missing)}; set {key}.{missing[0]}=...")


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
