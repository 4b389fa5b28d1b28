"""GSM8K, MATH-500 and MATH (train) as tasks: data loading, prompt formats and gold answers.

Public API (stable; registry names ``gsm8k``, ``math500``, ``math``):

- ``GSM8KTask(prompt="qwen-boxed", data_path=None, hub_id="openai/gsm8k", seed=1234)``
- ``MATH500Task(prompt="qwen-boxed", data_path=None, hub_id="HuggingFaceH4/MATH-500")``
- ``MATHTrainTask(prompt="qwen-boxed", data_path=None, hub_id="DigitalLearningGmbH/MATH-lighteval")``
- ``task.load(split="test", limit=None) -> list[Problem]`` (the ``Task`` protocol); ``task.name``.
- ``PROMPT_FORMATS``: ``qwen-boxed`` (PURE / Qwen2.5-Math style), ``gsm8k`` (lm-eval 5-shot from train), ``gsm8k_cot``
  (lm-eval's 8 fixed Wei-et-al. exemplars), ``cot_zeroshot`` (``Q: ...\\nA: Let's think step by step.``).
- ``gsm8k_gold(answer_text)`` / ``math_gold(record)``: the gold-answer conventions.

Data comes from a local JSONL (``data_path``), else the copy under ``<project>/../shared/data`` when present, else the
hub id through ``datasets`` (``evals.data``). Offline with neither, ``load`` raises one line naming ``data_path`` and the
hub id. A bad row (not JSON, a required field missing, null or empty, a gold answer that cannot be read) is skipped
with one line naming its file, line and field, and counted in ``task.row_tallies[split]`` (``pure_rl.core.rows``).
``Problem.meta`` keeps the reference ``solution`` (and MATH's ``subject``/``level``/``unique_id``) for reports and tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from evals.answer import extract_boxed
from evals.base import TaskDefaults
from evals.data import SHARED_DATA, Records, load_records
from pure_rl.core.configio import ConfigError
from pure_rl.core.interfaces import Problem
from pure_rl.core.rows import BadRow, RowTally, text_field

QWEN_BOXED = '{question}\n\nPlease reason step by step with steps separated by "\n\n", and put your final answer within \\boxed{{}}.'

# lm-eval gsm8k_cot's fixed exemplars (Wei et al. 2022, chain-of-thought prompting), in lm-eval's order.
GSM8K_COT_EXEMPLARS = (
    (
        (
            "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will "
            "be 21 trees. How many trees did the grove workers plant today?"
        ),
        (
            "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been "
            "21 - 15 = 6. The answer is 6."
        ),
    ),
    (
        "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
        "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
    ),
    (
        "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
        (
            "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they "
            "had 74 - 35 = 39. The answer is 39."
        ),
    ),
    (
        (
            "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason "
            "give to Denny?"
        ),
        (
            "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The "
            "answer is 8."
        ),
    ),
    (
        "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
        (
            "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The "
            "answer is 9."
        ),
    ),
    (
        (
            "There were nine computers in the server room. Five more computers were installed each day, from monday to "
            "thursday. How many computers are now in the server room?"
        ),
        (
            "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were "
            "added. 9 + 20 is 29. The answer is 29."
        ),
    ),
    (
        (
            "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls "
            "did he have at the end of wednesday?"
        ),
        (
            "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had "
            "35 - 2 = 33 golf balls. The answer is 33."
        ),
    ),
    (
        "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
        (
            "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. "
            "23 - 15 is 8. The answer is 8."
        ),
    ),
)


def gsm8k_gold(answer_text: str) -> str:
    """GSM8K gold: the text after ``####``, commas stripped: ``"...\\n#### 1,200"`` -> ``"1200"``."""
    if "####" not in answer_text:
        raise ValueError(f"GSM8K answer has no '####' line: {answer_text[-80:]!r}")
    return answer_text.split("####")[-1].strip().replace(",", "")


def math_gold(record: dict[str, Any]) -> str:
    """MATH gold: the ``answer`` field when present (MATH-500), else the last ``\\boxed{}`` of ``solution``."""
    if record.get("answer"):
        return str(record["answer"]).strip()
    boxed = extract_boxed(record.get("solution", ""))
    if boxed is None:
        raise ValueError(f"MATH record has neither 'answer' nor a \\boxed{{}} in 'solution': {str(record)[:120]!r}")
    return boxed


def _qwen_boxed(question: str, shots: list[tuple[str, str]]) -> str:
    return QWEN_BOXED.format(question=question)


def _gsm8k(question: str, shots: list[tuple[str, str]]) -> str:
    fewshot = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in shots)
    return f"{fewshot}Question: {question}\nAnswer:"


def _gsm8k_cot(question: str, shots: list[tuple[str, str]]) -> str:
    fewshot = "".join(f"Q: {q}\nA: {a}\n\n" for q, a in GSM8K_COT_EXEMPLARS)
    return f"{fewshot}Q: {question}\nA:"


def _cot_zeroshot(question: str, shots: list[tuple[str, str]]) -> str:
    return f"Q: {question}\nA: Let's think step by step."


PROMPT_FORMATS: dict[str, Callable[[str, list[tuple[str, str]]], str]] = {
    "qwen-boxed": _qwen_boxed,
    "gsm8k": _gsm8k,
    "gsm8k_cot": _gsm8k_cot,
    "cot_zeroshot": _cot_zeroshot,
}
# lm-eval's ``until`` for its formats: the model would go on to write the next exemplar.
PROMPT_STOPS = {"gsm8k": ["Question:"], "gsm8k_cot": ["Q:"], "cot_zeroshot": ["Q:"]}
PROMPT_SHOTS = {"gsm8k": 5, "gsm8k_cot": 8}  # few-shot exemplars in each format (others: 0)
SHOT_PROMPTS = {0: "qwen-boxed", 5: "gsm8k", 8: "gsm8k_cot"}


class _MathTaskBase(TaskDefaults):
    name = ""
    few_shot = False  # whether shots=5/8 prompt formats apply (GSM8K's exemplars)
    hub_config: str | None = None
    splits: tuple[str, ...] = ("test",)
    shared_dir = ""

    def __init__(
        self, prompt: str = "qwen-boxed", data_path: str | None = None, hub_id: str | None = None, seed: int = 1234
    ):
        if prompt not in PROMPT_FORMATS:
            raise ValueError(f"prompt={prompt!r} is not a prompt format; valid: {', '.join(PROMPT_FORMATS)}")
        self.prompt = prompt
        self.data_path = data_path
        self.hub_id = hub_id or self.default_hub_id
        self.seed = seed
        self.row_tallies: dict[str, RowTally] = {}  # split -> rows read and bad rows skipped by the last load

    default_hub_id = ""

    @property
    def stop(self) -> list[str]:
        return list(PROMPT_STOPS.get(self.prompt, []))

    @classmethod
    def cli_arguments(cls, prompt: str | None, shots: int | None, data_path: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {} if data_path is None else {"data_path": data_path}
        if shots is not None:
            if not cls.few_shot and shots != 0:
                raise ConfigError(f"shots={shots}: only task=gsm8k has few-shot prompts")
            prompt = prompt or SHOT_PROMPTS[shots]
            used = PROMPT_SHOTS.get(prompt, 0)
            if used != shots:
                raise ConfigError(f"prompt={prompt} uses {used} shots, not shots={shots}")
        if prompt is not None:
            kwargs["prompt"] = prompt
        return kwargs

    def _source(self, split: str) -> str | None:
        if self.data_path is not None:
            return self.data_path
        local = SHARED_DATA / self.shared_dir / f"{split}.jsonl"
        return str(local) if self.shared_dir and local.is_file() else None

    def _records(self, split: str) -> tuple[Records, RowTally]:
        if split not in self.splits:
            raise ValueError(f"split={split!r} is not a {self.name} split; valid: {', '.join(self.splits)}")
        return load_records(self._source(split), self.hub_id, self.hub_config, split)

    def _shots(self) -> list[tuple[str, str]]:
        return []

    def _problem(self, index: int, record: dict, split: str, shots: list[tuple[str, str]]) -> Problem:
        raise NotImplementedError

    def load(self, split: str = "test", limit: int | None = None) -> list[Problem]:
        """The first ``limit`` good problems of ``split`` (all when None), prompts formatted; bad rows skipped."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit={limit!r} must be >= 0 or None")
        records, tally = self._records(split)
        shots = self._shots()
        problems: list[Problem] = []
        for index, (position, record) in enumerate(records):
            if limit is not None and len(problems) >= limit:
                break
            tally.rows += 1
            try:
                if isinstance(record, BadRow):
                    raise record
                problems.append(self._problem(index, record, split, shots))
            except BadRow as bad:
                tally.add_bad(position, bad)
        self.row_tallies[split] = tally
        return problems


class GSM8KTask(_MathTaskBase):
    """GSM8K (``openai/gsm8k``, config ``main``): gold from the ``####`` line, commas stripped."""

    name = "gsm8k"
    few_shot = True
    lm_eval_conventions = True
    default_hub_id = "openai/gsm8k"
    hub_config = "main"
    splits = ("train", "test")
    shared_dir = "gsm8k"
    num_fewshot = 5

    def _shots(self) -> list[tuple[str, str]]:
        """lm-eval ``gsm8k``: 5 train examples with full worked answers, a seeded draw (not lm-eval's exact draw)."""
        if self.prompt != "gsm8k":
            return []
        train = [r for _, r in self._records("train")[0] if isinstance(r, dict) and _is_text(r, "question", "answer")]
        picks = random.Random(self.seed).sample(range(len(train)), self.num_fewshot)
        return [(train[i]["question"], train[i]["answer"]) for i in picks]

    def _problem(self, index: int, record: dict, split: str, shots: list[tuple[str, str]]) -> Problem:
        question = text_field(record, "question")
        return Problem(
            id=f"gsm8k/{split}/{index}",
            question=question,
            prompt=PROMPT_FORMATS[self.prompt](question, shots),
            answer=_gold(gsm8k_gold, text_field(record, "answer"), "answer"),
            meta={"solution": record["answer"], "index": index},
        )


class MATH500Task(_MathTaskBase):
    """MATH-500 (PRM800K ``math_splits/test.jsonl`` = ``HuggingFaceH4/MATH-500``): gold is the ``answer`` field."""

    name = "math500"
    max_new_tokens = 2048
    train_split = "test"  # MATH-500 is a test set only; train on task=math
    default_hub_id = "HuggingFaceH4/MATH-500"
    shared_dir = "math500"

    def _problem(self, index: int, record: dict, split: str, shots: list[tuple[str, str]]) -> Problem:
        question = text_field(record, "problem")
        meta = {k: record[k] for k in ("solution", "subject", "level", "unique_id") if k in record}
        return Problem(
            id=str(record.get("unique_id") or f"math500/{split}/{index}"),
            question=question,
            prompt=PROMPT_FORMATS[self.prompt](question, shots),
            answer=_gold(math_gold, record, "answer"),
            meta=meta,
        )


class MATHTrainTask(MATH500Task):
    """The full MATH train/test splits (7500 / 5000); gold is ``answer`` when present, else the last ``\\boxed{}``."""

    name = "math"
    max_new_tokens = 1024
    train_split = "train"
    default_hub_id = "DigitalLearningGmbH/MATH-lighteval"
    hub_config = "default"
    splits = ("train", "test")
    shared_dir = ""

    def _problem(self, index: int, record: dict, split: str, shots: list[tuple[str, str]]) -> Problem:
        problem = super()._problem(index, record, split, shots)
        problem.id = f"math/{split}/{index}"
        problem.meta.setdefault("subject", record.get("type"))
        return problem


def _is_text(record: dict, *names: str) -> bool:
    return all(isinstance(record.get(n), str) and record[n].strip() for n in names)


def _gold(read: Callable[[Any], str], value: Any, name: str) -> str:
    """A gold-answer reader's ValueError as the bad row it means."""
    try:
        return read(value)
    except (ValueError, TypeError, AttributeError) as exc:
        raise BadRow(name, str(exc)) from exc
