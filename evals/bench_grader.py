"""Grader benchmark: ``python -m evals.bench_grader [--per-gold 6] [--limit N] [--tasks gsm8k,math500] [--json OUT]``.

Builds labelled (completion, gold) pairs from the GSM8K test and MATH-500 reference answers in ``../shared/data``:
for every gold, equal forms (boxed, "The answer is", ``\\dfrac``, ``\\left(``/``\\right)``, spaces around operators, thousands separators,
``$``, units, trailing ``.0``, ``####``) labelled True and near misses (off by one, a changed digit, a flipped sign, ``+1``) labelled
False. The same inputs are graded, in one run, by

1. ``MathVerifier`` (this project: process pool, hard timeouts, fast path, cache cleared before the run),
2. the same grading logic (``grade_one``) in this process, no pool and no hard timeout (the single-core comparison),
3. plain math-verify in this process (``verify(parse(gold), parse(completion))``, as people call it),
4. plain math-verify in a pool of the same number of processes (to separate parallelism from the fast path),

and for each prints answers/s, p50/p99 per-item latency and agreement with the labels; then the ratio of our
throughput to each math-verify setting. Every grader runs in fresh processes warmed on the same ``WARM_UP_ANSWERS``
(so no one inherits another's parse caches), and start-up is excluded from the timings.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import random
import re
import statistics
import time
from collections.abc import Callable

from evals.tasks import GSM8KTask, MATH500Task
from evals.verifier import WARM_UP_ANSWERS, MathVerifier, _warm_up, grade_one
from pure_rl.core.interfaces import Problem

Pair = tuple[str, str, bool, str]  # completion, gold, label, generator name


def _spaced(gold: str) -> str | None:
    """Spaces around operators and commas: ``"(3,\\frac{\\pi}{2})"`` -> ``"( 3 , \\frac{\\pi}{2})"``."""
    if re.search(r"\d,(?:\\!)?\s*\d{3}", gold):
        return None  # "58 , 500" is a list, not a spaced 58,500
    spaced = re.sub(r"\s*([+=,<>]|(?<!^)-)\s*", r" \1 ", gold)
    return f"Answer: \\boxed{{ {spaced} }}" if spaced != gold else None


def _changed_digit(gold: str) -> str | None:
    """The first digit plus one (mod 10): a near miss."""
    m = re.search(r"\d", gold)
    if m is None:
        return None
    return f"So the answer is $\\boxed{{{gold[: m.start()]}{(int(m.group()) + 1) % 10}{gold[m.end() :]}}}$."


def _equal_forms(gold: str) -> list[tuple[str, Callable[[str], str | None]]]:
    number = re.fullmatch(r"-?\d+", gold)
    forms: list[tuple[str, Callable[[str], str | None]]] = [
        ("boxed", lambda g: f"We compute step by step.\n\nSo the final answer is $\\boxed{{{g}}}$."),
        ("answer_is", lambda g: f"Adding these up gives the result. The answer is ${g}$."),
        (
            "dfrac",
            lambda g: f"Thus $\\boxed{{{g.replace(chr(92) + 'frac', chr(92) + 'dfrac')}}}$" if "\\frac" in g else None,
        ),
        ("left_right", lambda g: f"\\boxed{{\\left({g[1:-1]}\\right)}}" if g[:1] == "(" and g[-1:] == ")" else None),
        ("spaced", _spaced),
    ]
    if number:
        n = int(gold)
        forms += [
            ("thousands", lambda g: f"The total is \\boxed{{{n:,}}}." if abs(n) >= 1000 else None),
            ("dollars", lambda g: f"She makes \\boxed{{\\${g}}} every day."),
            ("decimal", lambda g: f"So the answer is \\boxed{{{g}.0}}."),
            ("unit", lambda g: f"It takes \\boxed{{{g} \\text{{ minutes}}}}."),
            ("fraction", lambda g: f"The value is $\\boxed{{\\frac{{{2 * n}}}{{2}}}}$."),
            ("gsm8k_hash", lambda g: f"Let me add.\n#### {g}"),
        ]
    return forms


def _near_misses(gold: str) -> list[tuple[str, Callable[[str], str | None]]]:
    forms: list[tuple[str, Callable[[str], str | None]]] = [
        ("digit", _changed_digit),
        (
            "plus_one",
            lambda g: f"Hence $\\boxed{{{g}+1}}$." if "," not in g and "=" not in g and "\\text" not in g else None,
        ),
        (
            "negated",
            lambda g: (
                f"Therefore $\\boxed{{-({g})}}$."
                if re.search(r"[1-9a-z]", g) and not re.search(r"[,=]|\\text", g)
                else None
            ),
        ),
    ]
    if re.fullmatch(r"-?\d+", gold):
        forms.append(("off_by_one", lambda g: f"The answer is \\boxed{{{int(g) + 1}}}."))
    return forms


def make_pairs(golds: list[str], per_gold: int, seed: int = 0) -> list[Pair]:
    """About ``per_gold`` labelled completions per gold, ~60% equal forms and ~40% near misses, seeded."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    n_equal = max(1, round(per_gold * 0.6))
    for gold in golds:
        for forms, label, want in (
            (_equal_forms(gold), True, n_equal),
            (_near_misses(gold), False, per_gold - n_equal),
        ):
            made = [(name, f(gold)) for name, f in forms]
            made = [(name, text) for name, text in made if text is not None]
            for name, text in rng.sample(made, min(want, len(made))):
                pairs.append((text, gold, label, name))
    rng.shuffle(pairs)
    return pairs


def _mv_grade(item: tuple[str, str]) -> tuple[bool, float]:
    from math_verify import parse, verify

    completion, gold = item
    start = time.perf_counter()
    gold_text = gold if "$" in gold else f"${gold}$"
    ok = bool(verify(parse(gold_text), parse(completion)))
    return ok, time.perf_counter() - start


def _ours_grade(item: tuple[str, str]) -> tuple[bool, float]:
    completion, gold = item
    start = time.perf_counter()
    ok = bool(grade_one(completion, gold, "auto", _OURS_TIMEOUT)["correct"])
    return ok, time.perf_counter() - start


_OURS_TIMEOUT = 5.0


def _mv_init() -> None:
    """A math-verify process warmed on the same answers as our workers (``WARM_UP_ANSWERS``), for a fair start."""
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    for pred, gold in WARM_UP_ANSWERS:
        _mv_grade((f"\\boxed{{{pred}}}", gold))


def _ours_init() -> None:
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    _warm_up(_OURS_TIMEOUT, WARM_UP_ANSWERS)


def _timed_pool(grade, init, processes: int, items: list[tuple[str, str]]) -> tuple[list[tuple[bool, float]], float]:
    """Grade ``items`` in fresh ``spawn`` processes (no cache or parser state inherited from this one)."""
    with mp.get_context("spawn").Pool(processes, initializer=init) as pool:
        pool.map(grade, [("$1$", "1")] * processes)  # wait until every process has run its initializer
        start = time.perf_counter()
        graded = pool.map(grade, items, chunksize=16)
        return graded, time.perf_counter() - start


def _summary(name: str, verdicts: list[bool], latencies: list[float], wall: float, labels: list[bool]) -> dict:
    qs = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    agree = sum(v == lab for v, lab in zip(verdicts, labels))
    return {
        "grader": name,
        "items": len(verdicts),
        "wall_s": wall,
        "answers_per_s": len(verdicts) / wall,
        "p50_ms": qs[49] * 1e3,
        "p99_ms": qs[98] * 1e3,
        "agreement": agree / len(labels),
        "agree_count": agree,
    }


def run(per_gold: int, limit: int | None, workers: int, timeout: float, seed: int, tasks: tuple[str, ...]) -> dict:
    golds = []
    for task in tasks:
        golds += [p.answer for p in {"gsm8k": GSM8KTask, "math500": MATH500Task}[task]().load("test", limit)]
    pairs = make_pairs([g for g in golds if g], per_gold, seed)
    completions, gold_list, labels = [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs]
    problems = [Problem(str(i), "", "", g) for i, g in enumerate(gold_list)]
    results = []

    with MathVerifier(timeout=timeout, workers=workers, cache_size=0) as verifier:
        verifier.start()
        start = time.perf_counter()
        verdicts = verifier.verify_batch(problems, completions)
        wall = time.perf_counter() - start
        ours = _summary(
            "MathVerifier", [bool(v.correct) for v in verdicts], [v.info["time_s"] for v in verdicts], wall, labels
        )
        ours["timeouts"] = verifier.stats["timeouts"]
    results.append(ours)

    items = list(zip(completions, gold_list))
    for name, grade, init, processes in (
        ("grade_one (1 process, no pool)", _ours_grade, _ours_init, 1),
        ("math-verify (1 process)", _mv_grade, _mv_init, 1),
        (f"math-verify ({workers}-process pool)", _mv_grade, _mv_init, workers),
    ):
        graded, wall = _timed_pool(grade, init, processes, items)
        results.append(_summary(name, [v for v, _ in graded], [t for _, t in graded], wall, labels))
        if name == "math-verify (1 process)":
            plain = graded

    ours_v = [bool(v.correct) for v in verdicts]
    disagreements = [
        {"completion": c, "gold": g, "label": lab, "form": f, "ours": o, "math_verify": m}
        for (c, g, lab, f), o, (m, _) in zip(pairs, ours_v, plain)
        if o != lab or m != lab
    ]
    return {
        "pairs": len(pairs),
        "equal_forms": sum(labels),
        "near_misses": len(labels) - sum(labels),
        "results": results,
        "speedup_vs_plain": results[0]["answers_per_s"] / results[2]["answers_per_s"],
        "speedup_vs_pool": results[0]["answers_per_s"] / results[3]["answers_per_s"],
        "in_process_speedup": results[1]["answers_per_s"] / results[2]["answers_per_s"],
        "disagreements": disagreements,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench_grader", description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-gold", type=int, default=6, help="labelled completions per gold answer")
    parser.add_argument("--limit", type=int, default=None, help="golds taken from each of GSM8K and MATH-500")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", default="gsm8k,math500", help="comma-separated gold sources: gsm8k, math500")
    parser.add_argument("--json", default=None, help="write the full report (with disagreements) here")
    args = parser.parse_args(argv)
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    unknown = set(tasks) - {"gsm8k", "math500"}
    if unknown or not tasks:
        parser.error(f"--tasks={args.tasks!r}: valid names are gsm8k, math500")
    report = run(args.per_gold, args.limit, args.workers, args.timeout, args.seed, tasks)
    print(f"pairs={report['pairs']} (equal forms {report['equal_forms']}, near misses {report['near_misses']})")
    print(f"{'grader':<30} {'answers/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'agreement':>10}")
    for r in report["results"]:
        print(
            f"{r['grader']:<30} {r['answers_per_s']:>10.1f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} "
            f"{r['agreement']:>9.2%} ({r['agree_count']}/{report['pairs']})"
        )
    print(
        f"throughput ratio: {report['speedup_vs_plain']:.2f}x plain math-verify, "
        f"{report['speedup_vs_pool']:.2f}x math-verify in a {args.workers}-process pool; "
        f"one process each: {report['in_process_speedup']:.2f}x"
    )
    print(
        f"timeouts (ours): {report['results'][0]['timeouts']}; "
        f"items where either grader disagrees with the label: {len(report['disagreements'])}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
