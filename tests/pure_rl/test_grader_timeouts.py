"""Math-grader timeouts end to end through the trainer: the grader, not the answer, failed, so the row is masked in
training (no verifiable reward, no loss, counted in ``verifier_infra_failures``) and left out of the held-out
accuracy's denominator, the same rule ``evals.run`` applies."""

import torch

from evals.verifier import MathVerifier, math_verdict
from pure_rl.config import load_config, validate_config
from pure_rl.core.interfaces import Outcome
from pure_rl.evaluate import evaluate_heldout
from pure_rl.trainer import Trainer

FAST = ("reward.verifier_kwargs.warm_up=false", "reward.verifier_kwargs.workers=1", "task.eval_size=9",
        "rollout.prompts_per_step=3")


class TimesOutOnEveryThirdRow:
    """The project's math verifier, except that every third row of a batch gets the verdict its process pool gives
    an item that overran its deadline (``math_verdict`` of a "timeout" result). A fake only in *when* the grader
    times out: a real timeout depends on machine load, which a test cannot rely on."""

    def __init__(self, workers: int = 1, warm_up: bool = False):
        self.inner = MathVerifier(workers=workers, warm_up=warm_up)

    def __call__(self, problem, completion):
        return self.verify_batch([problem], [completion])[0]

    def verify_batch(self, problems, completions):
        verdicts = self.inner.verify_batch(problems, completions)
        timed_out = {"correct": False, "extracted": None, "reason": "timeout"}
        return [math_verdict(timed_out, p.answer, self.inner.timeout, cached=False) if i % 3 == 0 else v
                for i, (p, v) in enumerate(zip(problems, verdicts))]


def test_grader_timeouts_are_masked_in_training_and_excluded_from_evaluation(tiny_args):
    args = tiny_args(f"reward.verifier={__name__}:TimesOutOnEveryThirdRow", *FAST)
    trainer = Trainer(load_config(args, validate=validate_config))
    batch = trainer.rollout(trainer.train_problems[:3])
    trainer.verify(batch)
    timed_out = [i for i, v in enumerate(batch.verdicts) if v.outcome is Outcome.TIMEOUT]
    assert timed_out == list(range(0, batch.size, 3)) and batch.stats["verifier_infra_failures"] == len(timed_out)
    assert not batch.verdict_mask[timed_out].any() and batch.verdict_mask.sum() == batch.size - len(timed_out)
    trainer.segment(batch)
    trainer.score(batch)
    trainer.assign_credit(batch)
    assert batch.stats["masked_rows"] >= len(timed_out)
    assert torch.all(batch.advantages[timed_out] == 0)  # no loss on a row the grader could not judge
    graded = [v for v in batch.verdicts if v.outcome.graded]
    assert batch.stats["accuracy"] == sum(v.correct for v in graded) / len(graded)

    result = evaluate_heldout(trainer.engine, trainer.verifier, trainer.heldout, 24)
    assert result.infra_failures == 3 and result.graded == 6  # 9 held-out problems, rows 0, 3, 6 timed out
    plain = evaluate_heldout(trainer.engine, trainer.verifier.inner, trainer.heldout, 24)
    assert plain.graded == 9  # the same answers, graded without timeouts
    assert trainer.evaluate() == result.accuracy == result.correct / 6
    stats = trainer.train_step()
    assert stats["verifier_infra_failures"] == 4 and stats["masked_rows"] >= 4  # 12 rows: 0, 3, 6, 9
