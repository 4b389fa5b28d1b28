"""Recipe inheritance: ``base: NAME`` merges a recipe over another, ablations name only what they change, cycles fail."""

import pytest
from omegaconf import OmegaConf

from pure_rl.config import load_config, validate_config
from pure_rl.core.configio import RECIPES_DIR, ConfigError, load_recipe


def _leaves(node, prefix=""):
    """Dotted leaf keys of a nested dict."""
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


ABLATIONS = sorted(p.stem for p in RECIPES_DIR.rglob("*.yaml") if "base" in OmegaConf.load(p))


def test_the_ablation_recipes_inherit():
    assert {"smollm_arith_sum", "smollm_arith_hardmin", "qwen_math_sum"} <= set(ABLATIONS)


@pytest.mark.parametrize("recipe", ABLATIONS)
def test_each_ablation_differs_from_its_base_only_in_the_keys_it_names(recipe):
    own = OmegaConf.to_container(OmegaConf.load(next(RECIPES_DIR.rglob(f"{recipe}.yaml"))))
    base_name = own.pop("base")
    named = set(_leaves(own))
    assert named, f"{recipe} names no key of its own"
    child = load_config([f"recipe={recipe}"], validate=validate_config)
    parent = load_config([f"recipe={base_name}"], validate=validate_config)
    child_leaves = _leaves(OmegaConf.to_container(OmegaConf.structured(child)))
    parent_leaves = _leaves(OmegaConf.to_container(OmegaConf.structured(parent)))
    missing = object()  # a component's kwargs are its own: a swapped component's keys exist on one side only
    keys = set(child_leaves) | set(parent_leaves)
    differing = {k for k in keys if child_leaves.get(k, missing) != parent_leaves.get(k, missing)} - {"recipe"}
    # a kwargs dict the recipe names replaces the base's dict for a swapped component (keys of the old one drop out)
    replaced = {k.rsplit(".", 1)[0] for k in named if "kwargs." in k}
    dropped = {k for k in differing - named if k.rsplit(".", 1)[0] in replaced and k not in child_leaves}
    assert differing - dropped == {k for k in named if child_leaves.get(k, missing) != parent_leaves.get(k, missing)}
    assert differing - dropped <= named
    assert all(child_leaves[k] == v for k, v in _leaves(own).items())  # what it names wins over the base


def test_inheritance_is_recursive_and_the_child_wins(tmp_path):
    (tmp_path / "a.yaml").write_text("seed: 1\ncredit: {form: min, temperature: 0.2}\n")
    (tmp_path / "b.yaml").write_text(f"base: {tmp_path / 'a.yaml'}\ncredit: {{form: sum}}\n")
    (tmp_path / "c.yaml").write_text(f"base: {tmp_path / 'b.yaml'}\nseed: 3\n")
    merged = OmegaConf.to_container(load_recipe(str(tmp_path / "c.yaml")))
    assert merged == {"seed": 3, "credit": {"form": "sum", "temperature": 0.2}}
    cfg = load_config([f"recipe={tmp_path / 'c.yaml'}"], validate=validate_config)
    assert (cfg.seed, cfg.credit.form, cfg.credit.temperature) == (3, "sum", 0.2)


def test_a_base_cycle_is_a_one_line_error(tmp_path):
    (tmp_path / "x.yaml").write_text(f"base: {tmp_path / 'y.yaml'}\nseed: 1\n")
    (tmp_path / "y.yaml").write_text(f"base: {tmp_path / 'x.yaml'}\nseed: 2\n")
    with pytest.raises(ConfigError, match="cycle") as info:
        load_config([f"recipe={tmp_path / 'x.yaml'}"])
    assert "x -> y -> x" in str(info.value) and len(str(info.value).splitlines()) == 1


def test_an_unknown_base_names_the_known_recipes(tmp_path):
    (tmp_path / "z.yaml").write_text("base: tinyy\n")
    with pytest.raises(ConfigError, match="recipe 'tinyy' not found.*Did you mean 'tiny'"):
        load_recipe(str(tmp_path / "z.yaml"))
