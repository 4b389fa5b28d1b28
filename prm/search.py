"""Test-time search with any PRM that returns per-step scores: best-of-N and step-level beam search.

A candidate's score aggregates its step scores (mapped to [-1, 1] first, so PRMs with different ranges compare):
``last`` (a value model's estimate at the final token: TVM best-of-N), ``min`` (PURE's min-form outcome) or
``mean``. Step beam search (as in OVM / TVM): every live beam samples ``samples_per_step // beam_width`` next steps
(a step ends at the separator; a sample that ends without one, at EOS or the length cap, is a finished solution),
all candidates are scored, the best ``beam_width`` survive, and the best finished solution is returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from pure_rl.core.interfaces import Problem, ProcessRewardModel, SamplingParams
from pure_rl.core.scores import to_pm1

AGGREGATES = ("last", "min", "mean")


def aggregate_scores(step_scores: Sequence[float] | None, score_range: tuple[float, float], how: str) -> float:
    """One number per candidate from its step scores; an unscored (None) or empty candidate ranks last."""
    if how not in AGGREGATES:
        raise ValueError(f"aggregate={how!r} is not valid; use one of {', '.join(AGGREGATES)}")
    if not step_scores:
        return float("-inf")
    mapped = [to_pm1(float(s), score_range) for s in step_scores]
    if how == "last":
        return mapped[-1]
    if how == "min":
        return min(mapped)
    return sum(mapped) / len(mapped)


def split_response(text: str, separator: str = "\n\n") -> list[str]:
    """A response's steps, separators removed (an empty response is one empty step, as in PURE)."""
    steps = text.split(separator)
    while len(steps) > 1 and not steps[-1].strip():
        steps.pop()
    return steps


def best_of_n(prm: ProcessRewardModel, prompts: Sequence[str], candidates: Sequence[Sequence[Sequence[str]]],
              aggregate: str = "last") -> tuple[list[int], list[list[float]]]:
    """For each prompt, the index of its best candidate (each a list of steps), and every candidate's score.

    All candidates of all prompts go to the PRM in one ``score_steps`` call, so the PRM batches them.
    """
    if len(prompts) != len(candidates):
        raise ValueError(f"got {len(prompts)} prompts but {len(candidates)} candidate lists")
    flat_prompts = [p for p, cands in zip(prompts, candidates) for _ in cands]
    flat_steps = [list(c) for cands in candidates for c in cands]
    raw = prm.score_steps(flat_prompts, flat_steps) if flat_steps else []
    scores, best, k = [], [], 0
    for cands in candidates:
        row = [aggregate_scores(raw[k + j], prm.score_range, aggregate) for j in range(len(cands))]
        k += len(cands)
        scores.append(row)
        best.append(max(range(len(row)), key=row.__getitem__) if row else -1)
    return best, scores


@dataclass
class Beam:
    steps: list[str]
    score: float
    finished: bool


def _prefix_prompt(prompt: str, steps: Sequence[str], separator: str) -> str:
    return prompt + "".join(s + separator for s in steps)


def step_beam(engine: Any, prm: ProcessRewardModel, problems: Sequence[Problem], beam_width: int = 4,
              samples_per_step: int = 20, separator: str = "\n\n", max_steps: int = 10,
              sampling: SamplingParams | None = None, aggregate: str = "last") -> list[str]:
    """Step-level beam search; returns the best finished solution text per problem (steps joined by ``separator``).

    ``engine`` is any rollout engine; each step is sampled with ``separator`` as a stop string and
    ``sampling.max_new_tokens`` as the per-step cap. Problems are searched together, one engine call per step.
    """
    if beam_width < 1 or samples_per_step < beam_width or max_steps < 1:
        raise ValueError(f"step_beam needs beam_width >= 1, samples_per_step >= beam_width and max_steps >= 1; got "
                         f"{beam_width}, {samples_per_step}, {max_steps}")
    per_beam = samples_per_step // beam_width
    step_sampling = replace(sampling or SamplingParams(temperature=0.7, max_new_tokens=100), stop=(separator,))
    beams: list[list[Beam]] = [[Beam([], float("-inf"), False)] for _ in problems]
    for depth in range(max_steps):
        live = [(i, b) for i, row in enumerate(beams) for b in row if not b.finished]
        if not live:
            break
        queries = [replace(problems[i], prompt=_prefix_prompt(problems[i].prompt, b.steps, separator)) for i, b in live]
        seed = None if step_sampling.seed is None else step_sampling.seed + depth
        batch = engine.generate(queries, per_beam, replace(step_sampling, seed=seed))
        pool: list[list[Beam]] = [[b for b in row if b.finished] for row in beams]
        owners, candidates = [], []
        for r, text in enumerate(batch.responses):
            i, parent = live[r // per_beam]
            ended_step = text.endswith(separator)
            step = text[: -len(separator)] if ended_step else text
            # the last allowed step cannot be continued, so it counts as finished whatever it ends with
            finished = not ended_step or depth == max_steps - 1
            owners.append(i)
            candidates.append(Beam(parent.steps + [step], float("-inf"), finished))
        raw = prm.score_steps([problems[i].prompt for i in owners], [c.steps for c in candidates])
        for i, cand, row in zip(owners, candidates, raw):
            cand.score = aggregate_scores(row, prm.score_range, aggregate)
            pool[i].append(cand)
        beams = [sorted(row, key=lambda b: b.score, reverse=True)[:beam_width] for row in pool]
    out = []
    for row in beams:
        done = [b for b in row if b.finished] or row
        out.append(separator.join(max(done, key=lambda b: b.score).steps))
    return out
