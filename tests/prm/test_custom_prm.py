"""The custom-PRM example of prm/README.md, run verbatim from the docs as a module outside the package."""

import re
import sys
from pathlib import Path

import pytest

from pure_rl.core.interfaces import ProcessRewardModel
from pure_rl.core.registry import PRMS
from pure_rl.rewards import score_steps

README = Path(__file__).resolve().parents[2] / "prm" / "README.md"


@pytest.fixture
def my_prm_module(tmp_path, monkeypatch):
    section = README.read_text().split("## A custom PRM in 20 lines", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    assert len(code.strip().splitlines()) <= 22
    (tmp_path / "my_prm.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_prm:RepetitionPRM"
    sys.modules.pop("my_prm", None)


def test_readme_example_plugs_in_through_the_registry_and_the_trainer(my_prm_module):
    prm = PRMS.build(my_prm_module, min_chars=2)
    assert isinstance(prm, ProcessRewardModel)
    steps = [["3 + 4 = 7", "3 + 4  = 7", "\\boxed{7}"], ["x", "\\boxed{1}"]]
    assert prm.score_steps(["p", "q"], steps) == [[1.0, 0.0, 1.0], [0.0, 1.0]]
    scores, scored = score_steps(prm, ["p", "q"], steps, num_steps=3)  # the trainer's mapping to [-1, 1]
    assert scored.tolist() == [True, True]
    assert scores.tolist() == [[1.0, -1.0, 1.0], [-1.0, 1.0, 0.0]]
