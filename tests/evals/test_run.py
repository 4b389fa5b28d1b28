"""``python -m evals.run``: CLI errors and defaults, agreement with the trainer's held-out evaluation, resuming, and the
miniF2F pipeline (prompt -> proof extraction -> LeanVerifier -> per-split pass@k) against the FAKE REPL and real Lean."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from evals.config import EvalConfig, parse_args
from evals.loop import prepare_output
from evals.plan import resolve
from evals.run import main
from lean_env.testing import fake_repl
from pure_rl.batch import RolloutBatch
from pure_rl.core.interfaces import SamplingParams
from pure_rl.core.metrics import pass_at_k

ROOT = Path(__file__).resolve().parents[2]
FAKE_REPL = [sys.executable, fake_repl.__file__]


# ------------------------------------------------------------------------------------------------ fixtures / fakes


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real (seconds-long) run of the embedded default on an 18-problem arith task, checkpoints at steps 1 and 2.

    The tiny policy is trained on the held-out split itself (train_split=test) so its accuracy is above zero and moves
    between checkpoints: agreement is then checked on numbers that can disagree.
    """
    from pure_rl.train import main as train_main

    tmp = tmp_path_factory.mktemp("trained")
    args = [
        f"output_dir={tmp / 'run'}", "model.tiny.hidden_size=64", "model.tiny.num_layers=1", "model.tiny.num_heads=2",
        "model.tiny.intermediate_size=128", "model.warm_start.steps=60", "model.warm_start.lr=1e-2",
        "model.warm_start.batch_size=32", "task.kwargs.min_operands=2", "task.kwargs.max_operands=2",
        "task.kwargs.max_operand=3", "task.train_split=test", "task.eval_size=18", "task.eval_every=1",
        "rollout.prompts_per_step=4", "rollout.group_size=4", "rollout.max_new_tokens=24", "train.steps=2",
        "train.save_every=1", "train.keep_checkpoints=5", "log.progress=false", "log.tensorboard=false",
        "optim.micro_batch_size=8", "optim.lr=1e-3",
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PURE_RL_CACHE", str(tmp / "cache"))
        assert train_main(args) == 0
    return tmp / "run"


@pytest.fixture(scope="module")
def random_model(tmp_path_factory):
    """An untrained tiny Llama checkpoint folder (tokenizer included), built offline."""
    from evals.tasks import GSM8KTask
    from pure_rl.models.config import TinyModelConfig
    from pure_rl.models.tiny import build_tiny_model, build_tokenizer

    torch.manual_seed(0)
    corpus = [p.question for p in GSM8KTask().load("test", 50)]
    tokenizer = build_tokenizer(corpus, vocab_size=300)
    model = build_tiny_model(TinyModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32), tokenizer)
    folder = tmp_path_factory.mktemp("random") / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


class ScriptedProver:
    """FAKE rollout engine (test-only, registered by import string): returns scripted Lean proofs, no model.

    Problem i (in call order within a run) sample j: a proof the FAKE REPL accepts when (i + j) % 3 == 0, else one
    it rejects; problems whose name is in ``SLEEP`` get one wall-clock timeout (FAKE_SLEEP) as sample 0.
    """

    calls: ClassVar[list[tuple[list[str], SamplingParams]]] = []
    SLEEP: ClassVar[frozenset[str]] = frozenset({"mathd_algebra_478"})

    def __init__(self, model, tokenizer, device=None, use_chat_template=False):
        self.model = model

    @staticmethod
    def proof(index: int, sample: int, name: str) -> str:
        if sample == 0 and name in ScriptedProver.SLEEP:
            return "  FAKE_SLEEP\n```"
        return "  norm_num\n```\nDone." if (index + sample) % 3 == 0 else "  FAKE_ERROR\n```"

    def generate(self, problems, n, sampling):
        ScriptedProver.calls.append(([p.id for p in problems], sampling))
        texts = [self.proof(i, j, p.id) for i, p in enumerate(problems) for j in range(n)]
        rows = len(texts)
        empty = torch.zeros((rows, 1), dtype=torch.long)
        return RolloutBatch(
            problems=[p for p in problems for _ in range(n)], prompts=[p.prompt for p in problems for _ in range(n)],
            responses=texts, group_size=n, prompt_ids=empty, prompt_mask=empty.bool(), response_ids=empty,
            response_mask=empty.bool(), old_logprobs=empty.float(), finished=torch.ones(rows, dtype=torch.bool),
        )

    def sync_weights(self, model):
        self.model = model


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _metrics(out_dir):
    return json.loads((Path(out_dir) / "metrics.json").read_text())


def _without_times(records):
    """Records minus grading wall times (a resumed run's grader answers some samples from its cache)."""
    return [{**r, "samples": [{k: v for k, v in s.items() if k != "time_s"} for s in r["samples"]]} for r in records]


def _predictions(out_dir):
    return [json.loads(line) for line in (Path(out_dir) / "predictions.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------------------------------------ CLI and defaults


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["task=gsm8k"], "model= is required"),
        (["task=gsm8k", "model=x", "n=4", "k=1,8"], "k=8 needs 1 <= k <= n samples per problem (n=4)"),
        (["task=gsm8k", "model=x", "n=4", "temperature=0"], "n=4 samples at temperature=0"),
        (["task=gsm8k", "model=x", "temprature=0.5"], "did you mean 'temperature'?"),
        (["task=gsm8c", "model=x"], "Did you mean 'gsm8k'?"),
        (["task=math500", "model=x", "shots=5"], "shots=5: only task=gsm8k has few-shot prompts"),
        (["task=gsm8k", "model=x", "shots=5", "prompt=gsm8k_cot"], "prompt=gsm8k_cot uses 8 shots, not shots=5"),
        (["task=gsm8k", "model=x", "top_p=0"], "top_p must be in (0, 1]"),
        (["task=gsm8k", "model=x", "n"], "not of the form key=value"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, message, capsys, tmp_path):
    rc, _, err = _run([*argv, f"output_dir={tmp_path}"], capsys)
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_missing_model_and_bad_task_arguments_are_one_line_errors(capsys, tmp_path):
    rc, _, err = _run(["task=arith", "model=/no/such/ckpt", f"output_dir={tmp_path}", "limit=2"], capsys)
    assert rc == 2 and "model.path '/no/such/ckpt' does not exist" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _run(["task=gsm8k", "model=x", "split=dev", f"output_dir={tmp_path}"], capsys)
    assert rc == 2 and "split='dev' is not a gsm8k split; valid: train, test" in err
    rc, _, err = _run(["task=arith", "model=x", "task_kwargs.max_operands=1", f"output_dir={tmp_path}"], capsys)
    assert rc == 2 and "need 2 <= min_operands <= max_operands" in err


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_without_vllm_is_a_one_line_error(random_model, tmp_path, capsys):
    rc, _, err = _run(["task=arith", f"model={random_model}", "engine=vllm", "limit=2", f"output_dir={tmp_path}"], capsys)
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]  # transformers' progress bars share stderr
    assert rc == 2 and "engine=vllm: " in line and "vllm" in line.split("engine=vllm: ", 1)[1].lower()


def test_defaults_follow_each_protocol(tmp_path):
    def plan(*argv):
        return resolve(parse_args(["model=m", "run_config=none", *argv]))

    gsm = plan("task=gsm8k", "shots=8")
    assert gsm.task_kwargs == {"prompt": "gsm8k_cot"} and gsm.stop == ["Q:"] and gsm.temperature == 0.0
    assert plan("task=gsm8k", "shots=5").stop == ["Question:"] and plan("task=gsm8k").stop == []
    proof = plan("task=minif2f", "n=32", "k=1,8,32")
    assert proof.splits == ["valid", "test"] and proof.verifier == "lean" and proof.stop == ["```"]
    assert (proof.temperature, proof.top_p, proof.ks, proof.max_tokens) == (1.0, 0.95, [1, 8, 32], 2048)
    assert plan("task=minif2f", "prompt=chat").stop == []
    assert plan("task=math500", "n=6").ks == [1, 2, 4, 6]
    assert plan("task=math500", "data_path=/d.jsonl").task_kwargs == {"data_path": "/d.jsonl"}
    assert plan("task=minif2f", "data_path=/m.jsonl").task_kwargs == {"source": "/m.jsonl"}
    assert isinstance(parse_args(["model=m", "task=arith"]), EvalConfig)


# ------------------------------------------------------------------------------------------------ trainer agreement


def test_reproduces_the_trainers_heldout_accuracy(trained_run, tmp_path, capsys):
    summary = json.loads((trained_run / "summary.json").read_text())
    logged = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    at_step1 = next(r["heldout_accuracy"] for r in logged if r["step"] == 1 and "heldout_accuracy" in r)
    final = trained_run / "checkpoints" / "step-000002" / "model"
    # the documented command, as a user runs it: task, kwargs, split, size and caps come from the run's config.yaml
    result = subprocess.run([sys.executable, "-m", "evals.run", f"model={final}", f"output_dir={tmp_path / 'final'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "task.kwargs" in result.stdout and "task.eval_size" in result.stdout
    metrics = _metrics(tmp_path / "final")
    assert metrics["problems"] == summary["heldout_size"] == 18
    assert metrics["accuracy"]["value"] == pytest.approx(summary["heldout_accuracy_after"], abs=1e-12)
    low, high = metrics["accuracy"]["ci95"]
    assert low <= metrics["accuracy"]["value"] <= high
    # the step-1 checkpoint against the number the trainer logged at step 1 (eval_every=1)
    rc, _, _ = _run([f"model={final.parent.parent / 'step-000001' / 'model'}", f"output_dir={tmp_path / 's1'}"], capsys)
    assert rc == 0
    assert _metrics(tmp_path / "s1")["accuracy"]["value"] == pytest.approx(at_step1, abs=1e-12)
    assert max(at_step1, summary["heldout_accuracy_after"]) > 0, "the tiny run should solve something"
    for record in _predictions(tmp_path / "final"):
        (sample,) = record["samples"]
        assert record["prompt"].startswith("Compute ") and sample["outcome"] in ("correct", "wrong")
        assert (sample["outcome"] == "correct") == (sample["extracted"] == record["gold"])


def test_resumes_from_a_torn_predictions_file(trained_run, tmp_path, capsys):
    model = trained_run / "checkpoints" / "step-000002" / "model"
    argv = [f"model={model}", f"output_dir={tmp_path}", "chunk_size=4", "conventions=false", "verifier_kwargs.workers=1"]
    assert _run(argv, capsys)[0] == 0
    full = (tmp_path / "predictions.jsonl").read_text().splitlines(keepends=True)
    # killed while writing the third chunk: two chunks complete, half a line of the third
    (tmp_path / "predictions.jsonl").write_text("".join(full[:8]) + full[8][: len(full[8]) // 2])
    assert _run(argv, capsys)[0] == 0
    metrics = _metrics(tmp_path)
    assert (metrics["resumed_problems"], metrics["generated_problems"]) == (8, 10)
    assert _without_times(_predictions(tmp_path)) == _without_times([json.loads(line) for line in full])
    assert _run(argv, capsys)[0] == 0 and _metrics(tmp_path)["generated_problems"] == 0
    rc, _, err = _run([*argv, "n=2", "temperature=1.0"], capsys)
    assert rc == 2 and "holds predictions made with other settings" in err and "n: 1 -> 2" in err


def test_overwrite_discards_earlier_predictions(tmp_path):
    plan = resolve(parse_args(["task=arith", "model=m", "run_config=none", f"output_dir={tmp_path}", "overwrite=true"]))
    (tmp_path / "predictions.jsonl").write_text('{"id": "old", "samples": []}\n')
    (tmp_path / "eval_config.json").write_text(json.dumps({"n": 7}))
    assert prepare_output(plan).load() == {}
    assert json.loads((tmp_path / "eval_config.json").read_text()) == plan.fingerprint()


# ------------------------------------------------------------------------------------------------ GSM8K with a model


def test_gsm8k_with_a_tiny_model_records_every_convention(random_model, tmp_path, capsys):
    rc, out, _ = _run(["task=gsm8k", f"model={random_model}", "limit=3", "max_tokens=6", f"output_dir={tmp_path}",
                       "n=2", "temperature=1.0", "seed=3"], capsys)
    assert rc == 0 and "pass@2" in out
    records = _predictions(tmp_path)
    assert [r["id"] for r in records] == ["gsm8k/test/0", "gsm8k/test/1", "gsm8k/test/2"]
    assert all(set(r["conventions"]) == {"lm_eval_strict", "lm_eval_flexible", "math_verify"} for r in records)
    assert all(len(r["samples"]) == 2 and r["gold"] for r in records)
    metrics = _metrics(tmp_path)
    assert metrics["settings"]["temperature"] == 1.0 and metrics["samples"] == 6
    assert {"accuracy", "pass@1", "pass@2", "maj@2"} <= set(metrics)
    report = (tmp_path / "report.md").read_text()
    assert "## Per problem" in report and "gsm8k/test/2" in report and "## Grading conventions" in report
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_native_engine_on_a_lightning_checkpoint(tmp_path, capsys):
    """A lightning-policy folder loads (its model type is registered on demand) and decodes through engine=native."""
    from evals.arith import ArithTask
    from pure_rl.models.config import TinyModelConfig
    from pure_rl.models.tiny import build_tiny_model, build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer([p.meta["solution"] for p in ArithTask().load("train", 200)], vocab_size=300)
    model = build_tiny_model(TinyModelConfig(arch="lightning", hidden_size=32, num_layers=1, num_heads=2,
                                             intermediate_size=64), tokenizer)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    rc, _, err = _run(["task=arith", f"model={tmp_path / 'model'}", "engine=native", "limit=3", "max_tokens=5",
                       f"output_dir={tmp_path / 'out'}", "conventions=false"], capsys)
    assert rc == 0, err
    records = _predictions(tmp_path / "out")
    assert len(records) == 3 and all(len(r["samples"]) == 1 and r["samples"][0]["outcome"] in ("correct", "wrong")
                                     for r in records)
    assert _metrics(tmp_path / "out")["settings"]["engine"] == "native"


# ------------------------------------------------------------------------------------------------ miniF2F


def test_minif2f_pipeline_against_the_fake_repl(random_model, tmp_path, capsys):
    ScriptedProver.calls.clear()
    argv = ["task=minif2f", f"model={random_model}", "engine=tests.evals.test_run:ScriptedProver", "n=4", "k=1,2,4",
            "limit=3", f"output_dir={tmp_path}", "verifier_kwargs.backend=repl", "verifier_kwargs.size=2",
            "verifier_kwargs.timeout_s=3", f"verifier_kwargs.argv=[{FAKE_REPL[0]},{FAKE_REPL[1]}]"]
    rc, _, err = _run(argv, capsys)
    assert rc == 0, err
    ((ids, sampling),) = ScriptedProver.calls
    assert len(ids) == 6 and sampling.stop == ("```",) and (sampling.temperature, sampling.top_p) == (1.0, 0.95)
    records = _predictions(tmp_path)
    assert [r["split"] for r in records] == ["valid"] * 3 + ["test"] * 3
    expected: dict[str, list[float]] = {"valid": [], "test": []}
    for i, record in enumerate(records):
        outcomes = [s["outcome"] for s in record["samples"]]
        scripted = [ScriptedProver.proof(i, j, record["id"]) for j in range(4)]
        assert [s["text"] for s in record["samples"]] == scripted
        for text, sample in zip(scripted, record["samples"]):
            if "FAKE_SLEEP" in text:
                assert sample["outcome"] == "timeout" and sample["reason"].startswith("TIMEOUT")
            elif "norm_num" in text:
                assert sample["outcome"] == "correct" and sample["extracted"] == "  norm_num\n"
            else:
                assert sample["outcome"] == "wrong" and sample["reason"].startswith("LEAN_ERROR")
        n, c = sum(o != "timeout" for o in outcomes), outcomes.count("correct")
        expected[record["split"]].append((n, c))
    metrics = _metrics(tmp_path)
    assert metrics["timeouts"] == sum(r["id"] in ScriptedProver.SLEEP for r in records)
    for split, counts in expected.items():
        for k in (1, 2, 4):
            eligible = [pass_at_k(n, c, k) for n, c in counts if n >= k]
            got = metrics["by_split"][split][f"pass@{k}"]
            assert got["problems"] == len(eligible)
            assert got["value"] == pytest.approx(sum(eligible) / len(eligible))
    assert "maj@2" not in metrics
    report = (tmp_path / "report.md").read_text()
    assert "## By split" in report and "| valid |" in report and "(proof)" in report


@pytest.mark.lean_real
def test_minif2f_pipeline_against_real_lean(random_model, tmp_path, capsys):
    """Two miniF2F statements that ``norm_num`` closes, checked by the real REPL of ``$LEAN_PROJECT``."""
    from lean_env.minif2f import load_minif2f

    records = {r["name"]: r for r in load_minif2f()}
    data = tmp_path / "two.jsonl"
    data.write_text("".join(json.dumps(records[name]) + "\n"
                            for name in ("mathd_numbertheory_132", "mathd_numbertheory_200")))
    ScriptedProver.calls.clear()
    argv = ["task=minif2f", f"model={random_model}", "engine=tests.evals.test_run:ScriptedProver", "n=3", "k=1,3",
            f"data_path={data}", "split=valid", f"output_dir={tmp_path / 'out'}", "verifier_kwargs.timeout_s=300",
            f"verifier_kwargs.project={os.environ['LEAN_PROJECT']}"]
    rc, _, err = _run(argv, capsys)
    assert rc == 0, err
    metrics = _metrics(tmp_path / "out")
    assert metrics["infra_failures"] == 0 and metrics["timeouts"] == 0
    for i, record in enumerate(_predictions(tmp_path / "out")):
        for j, sample in enumerate(record["samples"]):
            proved = (i + j) % 3 == 0
            assert sample["outcome"] == ("correct" if proved else "wrong"), sample
    assert metrics["pass@3"]["value"] == 1.0
