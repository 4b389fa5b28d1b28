"""The PURE training loop as named, timed stages.

    batch = self.rollout(problems)   # sample K responses per prompt; learner recomputes log pi_old when needed
    self.verify(batch)               # verifier verdicts -> verifiable rewards (infra failures masked)
    self.segment(batch)              # step boundaries in policy tokens
    self.score(batch)                # PRM step scores mapped to [-1, 1] (unscored rows masked)
    self.assign_credit(batch)        # min/hardmin/sum transform, RLOO token baseline, VR, KL -> advantages
    stats = self.update(batch)       # PPO-clip over mini/micro-batches with gradient accumulation

Over 400 lines on purpose: the stage methods read best beside the loop that calls them; the run folder, checkpoints,
validation, progress display and monitors already live in their own modules.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import random
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import torch

from pure_rl import checkpoint as ckpt
from pure_rl import rundir
from pure_rl.batch import RolloutBatch
from pure_rl.config import Config, apply_task_defaults, to_container, to_yaml
from pure_rl.core.interfaces import Outcome, Problem, SamplingParams, Verdict
from pure_rl.core.registry import CREDIT_FORMS, PRMS, ROLLOUT_ENGINES, TASKS, VERIFIERS
from pure_rl.core.rows import usable_problems
from pure_rl.credit import rloo_token_advantages
from pure_rl.evaluate import evaluate_heldout
from pure_rl.logprobs import batched_token_logprobs, token_logprobs
from pure_rl.loss import kl_estimate, ppo_clip_loss
from pure_rl.models.loading import load_model
from pure_rl.monitors import HackingDetector, JumpDetector, batch_monitors, prm_returns, top_prm_wrong
from pure_rl.policy import apply_lora
from pure_rl.progress import step_display
from pure_rl.rewards import score_step_tokens, score_steps, strip_separator, verifiable_rewards
from pure_rl.runlog import RunLogger, plot_run
from pure_rl.steps import separator_token_ids, split_steps, step_end_indices
from pure_rl.validate import WarnOnce, build_component, check_score_range, check_verdicts

log = logging.getLogger(__name__)


class TrainingStopped(RuntimeError):
    """Raised when too many consecutive steps produced a non-finite loss."""


class Trainer:
    def __init__(self, cfg: Config):
        self.started = time.time()
        self.cfg = cfg
        self.timings: dict[str, float] = defaultdict(float)
        self.run_dir = rundir.prepare_run_dir(cfg.output_dir, cfg.recipe, cfg.resume, cfg.overwrite)
        resume_from = rundir.resume_checkpoint(cfg.resume, self.run_dir) if cfg.resume else None
        self.task = build_component(TASKS, cfg.task.name, cfg.task.kwargs, "task")
        apply_task_defaults(cfg, self.task)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        from accelerate import Accelerator

        device = cfg.train.device if cfg.train.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.accelerator = Accelerator(cpu=device == "cpu")
        self.device = self.accelerator.device

        self.train_problems = self._usable(cfg.task.train_split, None)
        self.heldout = self._usable(cfg.task.eval_split, cfg.task.eval_size)
        gt_rng = random.Random(cfg.seed + 1)
        self.has_gt = {p.id for p in self.train_problems if p.answer is not None and gt_rng.random() < cfg.reward.vr_fraction}
        self.verifier = build_component(VERIFIERS, cfg.reward.verifier, cfg.reward.verifier_kwargs, "reward.verifier")
        self.prm = build_component(PRMS, cfg.reward.prm, cfg.reward.prm_kwargs, "reward.prm")
        check_score_range(self.prm)
        self.warn_once = WarnOnce()
        self.credit_fn = CREDIT_FORMS.get(cfg.credit.form)
        # Random weights (policy or PRM) measure throughput and memory; their accuracy is no result, so none is reported.
        self.random_init = cfg.model.init == "random" or cfg.reward.prm_kwargs.get("init") == "random"

        with ckpt.quiet_progress_bars():
            model, self.tokenizer = load_model(cfg.model, cfg.task.name, cfg.task.kwargs, cfg.seed)
        torch.manual_seed(cfg.seed)  # building may draw random numbers (a warm start does, a cache hit does not)
        self.ref_model = None
        if cfg.credit.kl_coef > 0 and cfg.model.lora.r == 0:
            self.ref_model = copy.deepcopy(model).requires_grad_(False).eval().to(self.device)
        model = apply_lora(model, cfg.model.lora)
        if cfg.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                      weight_decay=cfg.optim.weight_decay)
        warmup = cfg.optim.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0)
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)
        self.engine = ROLLOUT_ENGINES.build(
            cfg.rollout.engine, model=self.policy, tokenizer=self.tokenizer, device=self.device,
            use_chat_template=cfg.rollout.chat_template, **cfg.rollout.engine_kwargs,
        )
        self.separator_ids = separator_token_ids(self.tokenizer, cfg.reward.separator)
        # The PRM decides whether it can read the policy's own token ids (one forward, no decode / re-encode).
        supports = getattr(self.prm, "supports_token_scoring", None)
        self.token_scoring = bool(supports and cfg.reward.token_path and supports(self.tokenizer))
        # One optimiser step per rollout batch: pi_old is the policy being updated, so the ratio is exactly 1 and
        # the loss can take its old log-probs from its own forward pass (detached) instead of a separate pass.
        self.single_pass_update = cfg.optim.ppo_epochs == 1 and cfg.optim.mini_batches == 1
        self.data_rng = random.Random(cfg.seed + 2)
        self.step = 0
        self.bad_steps = 0
        self.heldout_before: float | None = None
        self.elapsed_before = 0.0
        self.jumps = JumpDetector(cfg.log.jump_factor)
        self.hacking = HackingDetector(cfg.log.hacking_window)
        self.stop_requested = False
        self.saved_step: int | None = None
        self.logger = RunLogger(self.run_dir, cfg.log.tensorboard, cfg.log.wandb_project, config=to_container(cfg))
        if resume_from is not None:
            self._resume(resume_from)
        (self.run_dir / "config.yaml").write_text(to_yaml(cfg))  # after a resume: a refused one keeps the run's own

    # ------------------------------------------------------------------ building

    @property
    def policy(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def _usable(self, split: str, limit: int | None) -> list[Problem]:
        """The split's problems; bad rows (the task's, and empty prompts or questions) skipped, their share checked."""
        problems = self.task.load(split, limit)
        tally = getattr(self.task, "row_tallies", {}).get(split)
        return usable_problems(problems, tally, self.cfg.task.max_bad_row_fraction, f"task {self.cfg.task.name} split {split}")

    # ------------------------------------------------------------------ stages

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.timings[stage] += time.perf_counter() - t0

    def sampling(self, temperature: float | None = None) -> SamplingParams:
        r = self.cfg.rollout
        return SamplingParams(temperature=r.temperature if temperature is None else temperature, top_p=r.top_p,
                              max_new_tokens=r.max_new_tokens, stop=tuple(r.stop))

    def rollout(self, problems: list[Problem]) -> RolloutBatch:
        batch = self.engine.generate(problems, self.cfg.rollout.group_size, self.sampling())
        engine_logprobs = batch.old_logprobs  # None when the engine leaves them to the learner
        from_engine = engine_logprobs is not None
        if self.single_pass_update and self.cfg.credit.kl_coef == 0 and not from_engine:
            return batch  # pi_old is the policy the update's own forward pass sees: no extra pass needed
        ids, mask = batch.input_ids()
        batch.old_logprobs = batched_token_logprobs(
            self.policy, ids.to(self.device), mask.to(self.device), batch.response_ids.shape[1],
            self.cfg.rollout.temperature, self.cfg.optim.micro_batch_size,
        ).cpu()
        if from_engine:
            diff = (engine_logprobs - batch.old_logprobs).abs()[batch.response_mask]
            batch.stats["rollout_logprob_max_diff"] = float(diff.max()) if diff.numel() else 0.0
        return batch

    def verify(self, batch: RolloutBatch) -> None:
        try:
            verdicts = self.verifier.verify_batch(batch.problems, batch.responses)
        except Exception as exc:  # the verifier crashed as a whole: mask the batch rather than lose the run
            log.warning("verifier failed on the batch (%s: %s); rows masked", type(exc).__name__, exc)
            verdicts = [Verdict(None, None, {"reason": f"verifier error: {exc}"}) for _ in batch.problems]
        batch.verdicts, batch.stats["verifier_bad_verdicts"] = check_verdicts(verdicts, batch.size)
        if batch.stats["verifier_bad_verdicts"]:
            self.warn_once("bad_verdicts", "the verifier returned %d rows that are not valid Verdicts; masked",
                           batch.stats["verifier_bad_verdicts"])
        has_gt = [p.id in self.has_gt for p in batch.problems]
        batch.verifiable_rewards, batch.verdict_mask = verifiable_rewards(batch.verdicts, has_gt)
        graded = [v.outcome is Outcome.CORRECT for v in batch.verdicts if v.outcome.graded]
        batch.stats["accuracy"] = sum(graded) / len(graded) if graded else float("nan")
        batch.stats["verifier_infra_failures"] = len(batch.verdicts) - len(graded)

    def segment(self, batch: RolloutBatch) -> None:
        batch.step_end_idx = step_end_indices(batch.response_ids, batch.response_mask, self.separator_ids)
        batch.step_mask = batch.step_end_idx >= 0
        sep = self.cfg.reward.separator
        batch.step_texts = [
            [strip_separator(s, sep) for s in split_steps(batch.response_ids[i].tolist(), batch.step_end_idx[i].tolist(),
                                                          lambda t: self.tokenizer.decode(t, skip_special_tokens=True))]
            for i in range(batch.size)
        ]

    def score(self, batch: RolloutBatch) -> None:
        if self.token_scoring:
            ids, mask = batch.input_ids()
            batch.step_scores, batch.score_mask = score_step_tokens(self.prm, ids, mask, batch.prompt_ids.shape[1],
                                                                    batch.step_end_idx, batch.stats)
        else:
            prompts = [p.prompt for p in batch.problems]
            batch.step_scores, batch.score_mask = score_steps(self.prm, prompts, batch.step_texts,
                                                              batch.step_end_idx.shape[1], batch.stats)
        for kind in ("out_of_range", "malformed"):
            if batch.stats.get(f"prm_{kind}_rows"):
                self.warn_once(kind, "the PRM returned %d %s rows (score_range %s); masked, not clamped",
                               batch.stats[f"prm_{kind}_rows"], kind.replace("_", "-"), self.prm.score_range)
        valid = batch.step_mask & batch.score_mask[:, None]
        mins = batch.step_scores.masked_fill(~valid, float("inf")).amin(dim=1)
        batch.stats["prm_min_score"] = float(mins[torch.isfinite(mins)].mean()) if torch.isfinite(mins).any() else float("nan")
        batch.stats["prm_unscored_rows"] = int((~batch.score_mask).sum())

    def assign_credit(self, batch: RolloutBatch) -> None:
        c, K = self.cfg.credit, batch.group_size
        rows = batch.row_mask  # [B]
        ends = batch.step_end_idx.masked_fill(~rows[:, None], -1)
        mask = batch.response_mask & rows[:, None]
        batch.step_rewards = self.credit_fn(batch.step_scores, ends >= 0, temperature=c.temperature)
        v = _fill_masked_with_group_mean(batch.verifiable_rewards, rows, K)
        kl = None
        if c.kl_coef > 0:
            batch.ref_logprobs = self._ref_logprobs(batch)
            kl = kl_estimate(batch.old_logprobs, batch.ref_logprobs, c.kl_estimator) * mask
            batch.stats["kl"] = float(kl.sum() / mask.sum().clamp_min(1))
        batch.advantages = rloo_token_advantages(
            batch.step_rewards, ends, mask, K, v if self.cfg.reward.vr_coef != 0 else None, self.cfg.reward.vr_coef,
            kl, c.kl_coef, c.mask_step_ends, c.whiten, c.baseline, self.cfg.rollout.max_new_tokens,
        )
        per_row = batch.step_rewards.sum(dim=1) + self.cfg.reward.vr_coef * v
        batch.stats["reward"] = float(per_row[rows].mean()) if rows.any() else float("nan")
        batch.stats["masked_rows"] = int((~rows).sum())

    def _ref_logprobs(self, batch: RolloutBatch) -> torch.Tensor:
        ids, mask = batch.input_ids()
        args = (ids.to(self.device), mask.to(self.device), batch.response_ids.shape[1], self.cfg.rollout.temperature,
                self.cfg.optim.micro_batch_size)
        if self.ref_model is not None:
            return batched_token_logprobs(self.ref_model, *args).cpu()
        with self.policy.disable_adapter():  # LoRA: the frozen base model is the reference
            return batched_token_logprobs(self.policy, *args).cpu()

    def update(self, batch: RolloutBatch) -> dict[str, float]:
        o = self.cfg.optim
        ids, attn = batch.input_ids()
        loss_mask = batch.response_mask & batch.row_mask[:, None]  # [B, T]
        T = batch.response_ids.shape[1]
        if not batch.row_mask.any():  # nothing to learn from: no optimiser step, so AdamW momentum moves nothing
            log.warning("step %d: every row is masked (verifier infra failures %d, PRM-unscored rows %d); no update",
                        self.step + 1, batch.stats.get("verifier_infra_failures", 0), batch.stats.get("prm_unscored_rows", 0))
            return {"skipped_update": 1.0}
        totals: dict[str, float] = defaultdict(float)
        n_updates = 0
        self.model.train()
        for _ in range(o.ppo_epochs):
            order = torch.randperm(batch.size)
            for mini in order.chunk(o.mini_batches):
                denom = _loss_denominator(loss_mask[mini], o.loss_aggregation)
                self.optimizer.zero_grad(set_to_none=True)
                finite = True
                for micro in mini.split(o.micro_batch_size):
                    logp = token_logprobs(self.model, ids[micro].to(self.device), attn[micro].to(self.device), T,
                                          self.cfg.rollout.temperature)
                    m = loss_mask[micro].to(self.device)
                    old = logp.detach() if self.single_pass_update else batch.old_logprobs[micro].to(self.device)
                    loss, stats = ppo_clip_loss(logp, old,
                                                batch.advantages[micro].to(self.device), m, o.clip_eps, o.loss_aggregation)
                    weight = _loss_denominator(loss_mask[micro], o.loss_aggregation) / max(denom, 1)
                    if not torch.isfinite(loss):
                        finite = False
                        break
                    self.accelerator.backward(loss * weight)
                    totals["loss"] += loss.item() * weight
                    for k, v in stats.items():
                        totals[k] = max(totals[k], v) if k == "ratio_max" else totals[k] + v * weight
                if not finite:
                    self.optimizer.zero_grad(set_to_none=True)
                    return self._bad_step()
                grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), o.grad_clip)
                if not torch.isfinite(torch.as_tensor(grad_norm)):
                    self.optimizer.zero_grad(set_to_none=True)
                    return self._bad_step()
                self.optimizer.step()
                totals["grad_norm"] += float(grad_norm)
                n_updates += 1
        self.scheduler.step()
        self.bad_steps = 0
        self.engine.sync_weights(self.policy)
        out = {k: (v if k == "ratio_max" else v / max(n_updates, 1)) for k, v in totals.items()}
        out["lr"] = self.scheduler.get_last_lr()[0]
        return out

    def _bad_step(self) -> dict[str, float]:
        self.bad_steps += 1
        log.warning("non-finite loss or gradient at step %d: update skipped (%d in a row)", self.step + 1, self.bad_steps)
        if self.bad_steps >= self.cfg.optim.max_bad_steps:
            raise TrainingStopped(f"{self.bad_steps} consecutive non-finite steps (optim.max_bad_steps); stopping")
        return {"skipped_update": 1.0}

    # ------------------------------------------------------------------ loop

    def train_step(self) -> dict[str, float]:
        problems = self.data_rng.sample(self.train_problems, min(self.cfg.rollout.prompts_per_step, len(self.train_problems)))
        with self.timed("rollout"):
            batch = self.rollout(problems)
        with self.timed("verify"):
            self.verify(batch)
        with self.timed("segment"):
            self.segment(batch)
        with self.timed("score"):
            self.score(batch)
        with self.timed("credit"):
            self.assign_credit(batch)
        with self.timed("update"):
            stats = self.update(batch)
        with self.timed("monitor"):
            stats.update(batch.stats)
            stats.update(batch_monitors(batch))
            self.logger.log_samples(self.step + 1, self.samples(batch))
        return stats

    def samples(self, batch: RolloutBatch) -> list[dict[str, Any]]:
        """The first ``log.samples_per_step`` rollouts (one group first, so its spread of outcomes shows), then the
        ``log.prm_wrong_per_step`` wrong answers the PRM rewards most (``kind: top_prm_wrong``)."""
        out = []
        first = list(range(min(self.cfg.log.samples_per_step, batch.size)))
        returns = prm_returns(batch)
        for i, kind in [(i, "first") for i in first] + [(i, "top_prm_wrong") for i in top_prm_wrong(batch, self.cfg.log.prm_wrong_per_step)]:
            steps = int(batch.step_mask[i].sum())
            out.append({"kind": kind, "prm_return": round(float(returns[i]), 4),
                "question": batch.problems[i].question, "answer": batch.problems[i].answer,
                "response": batch.responses[i], "correct": batch.verdicts[i].correct,
                "steps": batch.step_texts[i], "step_scores": [round(float(x), 4) for x in batch.step_scores[i, :steps]],
                "advantage_mean": round(float(batch.advantages[i][batch.response_mask[i]].mean()), 4)
                if batch.response_mask[i].any() else 0.0,
            })
        return out

    def evaluate(self) -> float:
        with self.timed("evaluate"):
            max_new = self.cfg.task.eval_max_new_tokens or self.cfg.rollout.max_new_tokens
            result = evaluate_heldout(self.engine, self.verifier, self.heldout, max_new)
        if result.infra_failures:
            log.warning("held-out evaluation: %d infrastructure failures excluded", result.infra_failures)
        return result.accuracy

    def fit(self) -> dict[str, Any]:
        previous = {s: signal.signal(s, self._request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._fit()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            self.logger.close()

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt
        log.warning("signal %d: finishing this step, writing a checkpoint, then exiting", signum)
        self.stop_requested = True

    def _fit(self) -> dict[str, Any]:
        cfg = self.cfg
        if self.heldout_before is None and not self.random_init:
            self.heldout_before = self.evaluate()
            self.logger.log(self.step, {"heldout_accuracy": self.heldout_before})
            log.info("held-out accuracy before RL: %.3f", self.heldout_before)
        with step_display(cfg.log.progress, cfg.train.steps, self.step) as show:
            while self.step < cfg.train.steps and not self.stop_requested:
                metrics = self.train_step()
                self.step += 1
                if (cfg.task.eval_every and self.step % cfg.task.eval_every == 0 and self.step < cfg.train.steps
                        and not self.random_init):
                    metrics["heldout_accuracy"] = self.evaluate()
                metrics.update({f"time/{k}": v for k, v in self.timings.items()})
                for warning in self.jumps.update(metrics) + self.hacking.update(metrics):
                    log.warning("monitor: %s", warning)
                self.logger.log(self.step, metrics)
                show(self.step, metrics)
                if cfg.train.save_every and self.step % cfg.train.save_every == 0:
                    self.save()
        after = None
        if not self.stop_requested and not self.random_init:
            after = self.evaluate()
            self.logger.log(self.step, {"heldout_accuracy": after})
        if self.saved_step != self.step:  # the last step once, even when save_every already saved it
            self.save()
        if self.stop_requested:
            log.warning("stopped by signal at step %d; resume with resume=auto output_dir=%s", self.step, self.run_dir)
        summary = rundir.summary(self, after)
        if self.random_init:
            from pure_rl.models.random_init import RANDOM_INIT_NOTE

            summary = {"init": RANDOM_INIT_NOTE, **{k: v for k, v in summary.items() if "accuracy" not in k}}
        plot_run(self.run_dir)
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary

    # ------------------------------------------------------------------ checkpoints

    def save(self) -> Path | None:
        """A checkpoint of this step, or None when writing it failed (warned; the next save retries)."""
        with self.timed("checkpoint"):
            path = ckpt.try_save_checkpoint(self.run_dir / "checkpoints", self.step, self.policy, self.tokenizer,
                                            ckpt.trainer_state(self), self.cfg.train.keep_checkpoints)
        if path is not None:
            self.saved_step = self.step
        return path

    def _resume(self, found: Path) -> None:
        ckpt.resume_trainer(self, found)
        self.saved_step = self.step


def _loss_denominator(mask: torch.Tensor, aggregation: str) -> float:
    """Tokens (token-mean) or sequences with tokens (seq-mean-token-mean): the weight of a micro-batch."""
    return float(mask.sum()) if aggregation == "token-mean" else float(mask.any(dim=1).sum())


def _fill_masked_with_group_mean(v: torch.Tensor, rows: torch.Tensor, group_size: int) -> torch.Tensor:
    """Replace masked rows' verifiable rewards by their group's judged mean, so they shift no baseline."""
    g_v, g_m = v.view(-1, group_size), rows.view(-1, group_size).float()
    mean = (g_v * g_m).sum(1, keepdim=True) / g_m.sum(1, keepdim=True).clamp_min(1)
    return torch.where(g_m.bool(), g_v, mean.expand_as(g_v)).reshape(-1)
