"""Grade a predictions file: ``python -m evals.grade PREDICTIONS.jsonl --task gsm8k|math500|...`` (any ``TASKS`` name).

Each JSONL line holds a model output under ``completion`` (or ``prediction`` / ``response`` / ``output``) and either its
gold (``answer`` / ``gold``) or a pointer into the task data (``id`` = the task's ``Problem.id``, or ``index``); a line
with neither is matched to the task problem of the same line number. Prints accuracy, timeouts, agreement with
lm-eval-style grading (tasks with ``lm_eval_conventions``, i.e. GSM8K: strict-match and flexible-extract, exact match after lm-eval's normalisation) and with
plain math-verify (``parse`` + ``verify``), and a table of the disagreements. ``--out FILE`` writes one verdict per line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from evals.answer import lm_eval_exact_match, lm_eval_flexible, lm_eval_strict
from evals.base import task_attr
from evals.verifier import MathVerifier
from pure_rl.core.interfaces import Outcome, Problem
from pure_rl.core.registry import TASKS, RegistryError

COMPLETION_KEYS = ("completion", "prediction", "response", "output")
GOLD_KEYS = ("answer", "gold")


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """Parse the JSONL file; a malformed line raises one error naming the file and line number."""
    rows = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or not any(k in row for k in COMPLETION_KEYS):
                raise ValueError(f"{path}:{number}: needs one of the keys {', '.join(COMPLETION_KEYS)}")
            rows.append(row)
    return rows


def load_task(task_name: str, data_path: str | None) -> Any:
    """The registered task, reading ``data_path`` the way ``evals.run``'s ``data_path=`` does."""
    return TASKS.build(task_name, **task_attr(TASKS.get(task_name), "cli_arguments")(None, None, data_path))


def attach_problems(rows: list[dict[str, Any]], task_name: str, data_path: str | None) -> list[tuple[Problem, str]]:
    """Pair each prediction with its Problem (gold from the row, else from the task's held-out split by id / index /
    line)."""
    problems: list[Problem] | None = None
    by_id: dict[str, Problem] = {}
    pairs = []
    for line, row in enumerate(rows):
        completion = next(str(row[k]) for k in COMPLETION_KEYS if k in row)
        gold = next((row[k] for k in GOLD_KEYS if row.get(k) is not None), None)
        if gold is not None:
            pairs.append((Problem(str(row.get("id", line)), "", "", str(gold)), completion))
            continue
        if problems is None:
            task = load_task(task_name, data_path)
            problems = task.load(task_attr(task, "eval_split"))
            by_id = {p.id: p for p in problems}
        if "id" in row and str(row["id"]) in by_id:
            pairs.append((by_id[str(row["id"])], completion))
            continue
        index = int(row.get("index", line))
        if not 0 <= index < len(problems):
            raise ValueError(
                f"prediction {line}: index {index} is outside the {task_name} held-out set (0..{len(problems) - 1})"
            )
        pairs.append((problems[index], completion))
    return pairs


def lm_eval_verdicts(completion: str, gold: str) -> tuple[bool, bool]:
    """(strict-match, flexible-extract) exact match against the gold, as lm-eval's GSM8K tasks score them."""
    strict = lm_eval_strict(completion, "gsm8k")
    if strict == "[invalid]":
        strict = lm_eval_strict(completion, "gsm8k_cot")
    return lm_eval_exact_match(strict, gold), lm_eval_exact_match(lm_eval_flexible(completion), gold)


def math_verify_verdict(completion: str, gold: str) -> bool:
    """Plain math-verify: ``verify(parse(gold), parse(completion))`` with its default configs and timeouts."""
    from math_verify import parse, verify

    gold_text = gold if "$" in gold or "\\boxed" in gold else f"${gold}$"
    return bool(verify(parse(gold_text), parse(completion)))


def _short(text: Any, width: int = 28) -> str:
    text = "" if text is None else str(text).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", type=Path, help="JSONL of model outputs")
    parser.add_argument("--task", required=True, help=f"a task name ({', '.join(TASKS.names())}) or module:attr")
    parser.add_argument(
        "--data-path", default=None, help="local JSONL of the task's test split (default: shared copy / hub)"
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="hard per-item grading timeout, seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--style", default="auto", help="answer extraction style (auto, boxed, gsm8k, answer_is, last_number)"
    )
    parser.add_argument("--no-math-verify", action="store_true", help="skip the plain math-verify comparison column")
    parser.add_argument("--show", type=int, default=20, help="disagreement rows to print")
    parser.add_argument("--out", type=Path, default=None, help="write per-item verdicts (JSONL) here")
    args = parser.parse_args(argv)
    if not args.predictions.is_file():
        parser.error(f"predictions file {str(args.predictions)!r} does not exist")
    try:
        TASKS.check(args.task)
    except RegistryError as exc:
        parser.error(f"--task: {exc}")
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)

    pairs = attach_problems(read_predictions(args.predictions), args.task, args.data_path)
    with MathVerifier(timeout=args.timeout, workers=args.workers, style=args.style) as verifier:
        verdicts = verifier.verify_batch([p for p, _ in pairs], [c for _, c in pairs])

    rows = []
    for (problem, completion), verdict in zip(pairs, verdicts):
        strict, flexible = lm_eval_verdicts(completion, problem.answer or "")
        mv = None if args.no_math_verify else math_verify_verdict(completion, problem.answer or "")
        rows.append(
            {
                "id": problem.id,
                "gold": problem.answer,
                "extracted": verdict.info.get("extracted"),
                "correct": verdict.correct,
                "outcome": verdict.outcome.value,
                "reason": verdict.info.get("reason"),
                "lm_eval_strict": strict,
                "lm_eval_flexible": flexible,
                "math_verify": mv,
            }
        )
    n = len(rows)
    ours = sum(bool(r["correct"]) for r in rows)
    timeouts = sum(r["outcome"] == Outcome.TIMEOUT.value for r in rows)
    print(f"task={args.task} predictions={n} accuracy={ours / max(n, 1):.4f} ({ours}/{n}) timeouts={timeouts}")
    # lm-eval's regexes are GSM8K's (numbers); on MATH answers they only measure extraction failures, so they are not shown.
    lm_eval = task_attr(TASKS.get(args.task), "lm_eval_conventions")
    others = (["lm_eval_strict", "lm_eval_flexible"] if lm_eval else []) + (
        [] if args.no_math_verify else ["math_verify"]
    )
    for name in others:
        acc = sum(bool(r[name]) for r in rows)
        agree = sum(bool(r[name]) == bool(r["correct"]) for r in rows)
        print(f"  {name:<17} accuracy={acc / max(n, 1):.4f}  agreement with ours={agree}/{n}")
    disagreements = [r for r in rows if any(bool(r[k]) != bool(r["correct"]) for k in others)]
    if disagreements:
        print(f"\ndisagreements ({len(disagreements)}, showing {min(args.show, len(disagreements))}):")
        header = {"lm_eval_strict": "strict", "lm_eval_flexible": "flex", "math_verify": "m-v"}
        print(f"{'id':<28} {'gold':<20} {'extracted':<20} ours " + " ".join(f"{header[k]:>6}" for k in others))
        for r in disagreements[: args.show]:
            flags = (
                " ".join(f"{'-' if r[k] is None else int(bool(r[k]))!s:>4}" for k in ["correct"])
                + " "
                + " ".join(f"{int(bool(r[k])):>6}" for k in others)
            )
            print(f"{_short(r['id']):<28} {_short(r['gold'], 20):<20} {_short(r['extracted'], 20):<20} {flags}")
    if args.out:
        with args.out.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
