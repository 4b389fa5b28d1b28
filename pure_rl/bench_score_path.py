"""Score-stage timing, token path vs text path, side by side on one rollout batch of a pure_rl recipe.

    OMP_NUM_THREADS=1 python -m pure_rl.bench_score_path [recipe=tiny_tvm] [repeats=5] [key=value ...]

Builds the recipe's trainer (its PRM trained / loaded from the cache), samples one rollout batch, segments it, then
runs the trainer's ``score`` stage alternately through the token path (the PRM reads the rollout ids) and the text
path (decode, re-encode), checks they agree, and prints the median times and their ratio as JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time


def main(argv: list[str] | None = None) -> dict:
    import torch

    from pure_rl.config import load_config, validate_config
    from pure_rl.trainer import Trainer

    argv = list(sys.argv[1:] if argv is None else argv)
    repeats = int(next((a.split("=", 1)[1] for a in argv if a.startswith("repeats=")), 5))
    argv = [a for a in argv if not a.startswith("repeats=")]
    if not any(a.startswith("recipe=") for a in argv):
        argv.insert(0, "recipe=tiny_tvm")
    cfg = load_config(argv + [f"output_dir={tempfile.mkdtemp(prefix='bench_score_')}", "log.tensorboard=false"],
                      validate=validate_config)
    trainer = Trainer(cfg)
    if not trainer.token_scoring:
        raise SystemExit(f"error: reward.prm={cfg.reward.prm!r} does not offer the token path for this policy")
    problems = trainer.data_rng.sample(trainer.train_problems, cfg.rollout.prompts_per_step)
    batch = trainer.rollout(problems)
    trainer.verify(batch)
    trainer.segment(batch)
    times: dict[str, list[float]] = {"token": [], "text": []}
    scores = {}
    for _ in range(repeats):
        for path in ("token", "text"):
            trainer.token_scoring = path == "token"
            t0 = time.perf_counter()
            trainer.score(batch)
            times[path].append(time.perf_counter() - t0)
            scores[path] = batch.step_scores.clone()
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"recipe": cfg.recipe, "rows": batch.size, "max_steps": int(batch.step_end_idx.shape[1]),
           "tokens": int(batch.input_ids()[1].sum()), "repeats": repeats,
           "token_path_s": med["token"], "text_path_s": med["text"], "speedup": med["text"] / med["token"],
           "max_abs_diff": float((scores["token"] - scores["text"]).abs().max()),
           "torch_threads": torch.get_num_threads()}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
