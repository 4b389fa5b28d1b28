"""Registry: built-ins and plugins resolve through the same path; unknown names list the known ones."""

import sys
import types

import pytest

from pure_rl.core.registry import PRMS, Registry, RegistryError, import_string

PLUGIN_SOURCE = '''
class ConstantPRM:
    """A user PRM living outside the package: every step is worth 0.5 on a [0, 1] scale."""
    score_range = (0.0, 1.0)

    def __init__(self, value=0.5):
        self.value = value

    def score_steps(self, prompts, steps):
        return [[self.value] * len(row) for row in steps]
'''


@pytest.fixture
def plugin_module():
    module = types.ModuleType("my_plugin_pkg")
    exec(PLUGIN_SOURCE, module.__dict__)
    sys.modules["my_plugin_pkg"] = module
    yield module
    del sys.modules["my_plugin_pkg"]


def test_builtin_and_plugin_go_through_the_same_path(plugin_module):
    from pure_rl.core.interfaces import ProcessRewardModel

    builtin = PRMS.build("arith")
    plugin = PRMS.build("my_plugin_pkg:ConstantPRM", value=0.25)
    for prm in (builtin, plugin):
        assert isinstance(prm, ProcessRewardModel)
    assert plugin.score_steps(["q"], [["a", "b"]]) == [[0.25, 0.25]]


def test_unknown_name_lists_known_ones():
    with pytest.raises(RegistryError, match="known: arith, .*Did you mean 'arith'"):
        PRMS.get("arit")


def test_bad_import_strings_explain_themselves():
    with pytest.raises(RegistryError, match="cannot import module 'no_such_module_xyz'"):
        import_string("no_such_module_xyz:Thing")
    with pytest.raises(RegistryError, match="has no attribute 'Nope'"):
        import_string("pure_rl.credit:Nope")


def test_register_decorator_and_lazy_resolution():
    reg = Registry("thing", lazy={"min": "pure_rl.credit:min_form"})

    @reg.register("double")
    def double(x):
        return 2 * x

    assert reg.get("double")(3) == 6
    from pure_rl.credit import min_form

    assert reg.get("min") is min_form
    assert reg.names() == ["double", "min"]
