"""``TokenValueModel`` on a tiny random Llama: shapes, ranges, losses, save/load, and that training moves it."""

import pytest
import torch

from prm.fit import FitConfig, fit
from prm.tvm.data import LabelledPath, collate
from prm.tvm.model import TokenValueModel, ValueHeadConfig, lm_loss, value_loss
from tests.prm.conftest import tiny_llama_config


@pytest.fixture
def tvm(arith_tokenizer):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    return TokenValueModel(LlamaForCausalLM(tiny_llama_config(arith_tokenizer)))


def test_values_are_per_token_probabilities(tvm):
    ids = torch.randint(3, 100, (3, 11))
    mask = torch.ones(3, 11, dtype=torch.long)
    logits, lm_logits = tvm(ids, mask, with_lm_logits=True)
    assert logits.shape == (3, 11) and lm_logits.shape == (3, 11, tvm.config.vocab_size)
    torch.nn.init.normal_(tvm.value_head.weight)
    values = tvm.values(ids, mask)
    assert values.shape == (3, 11) and bool(((values > 0) & (values < 1)).all())
    # causal: a token's value does not depend on later tokens
    assert torch.allclose(tvm.values(ids[:, :5], mask[:, :5]), values[:, :5], atol=1e-5)


def test_value_losses_match_their_formulas():
    logits = torch.tensor([[0.3, -1.0, 2.0]])
    labels = torch.tensor([[0.5, 0.0, 1.0]])
    mask = torch.tensor([[False, True, True]])
    p = torch.sigmoid(logits)
    mse = ((p[0, 1] - 0) ** 2 + (p[0, 2] - 1) ** 2) / 2
    assert value_loss(logits, labels, mask, "mse", "sigmoid").item() == pytest.approx(mse.item())
    identity = ((logits[0, 1] - 0) ** 2 + (logits[0, 2] - 1) ** 2) / 2
    assert value_loss(logits, labels, mask, "mse", "identity").item() == pytest.approx(identity.item())
    bce = -(torch.log(1 - p[0, 1]) + torch.log(p[0, 2])) / 2
    assert value_loss(logits, labels, mask, "bce", "sigmoid").item() == pytest.approx(bce.item(), rel=1e-5)
    with pytest.raises(ValueError, match="needs activation=sigmoid"):
        value_loss(logits, labels, mask, "bce", "identity")
    with pytest.raises(ValueError, match="use mse or bce"):
        value_loss(logits, labels, mask, "l1", "sigmoid")
    with pytest.raises(ValueError, match="activation='tanh'"):
        ValueHeadConfig(activation="tanh")


def test_lm_loss_predicts_the_masked_tokens_only():
    V = 5
    lm_logits = torch.randn(1, 4, V)
    ids = torch.tensor([[1, 2, 3, 4]])
    mask = torch.tensor([[False, False, True, True]])
    want = torch.nn.functional.cross_entropy(lm_logits[0, 1:3], ids[0, 2:4])
    assert lm_loss(lm_logits, ids, mask).item() == pytest.approx(want.item(), rel=1e-6)


def test_save_and_load_round_trip(tvm, tmp_path):
    torch.nn.init.normal_(tvm.value_head.weight)
    tvm.head_config = ValueHeadConfig(activation="sigmoid", dropout=0.0)
    tvm.save_pretrained(tmp_path)
    loaded = TokenValueModel.from_pretrained(tmp_path)
    ids = torch.randint(3, 100, (2, 9))
    mask = torch.ones_like(ids)
    assert torch.allclose(loaded.values(ids, mask), tvm.eval().values(ids, mask), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="not a TVM checkpoint"):
        TokenValueModel.from_pretrained(tmp_path / "nothing")


def test_fit_lowers_the_loss_and_moves_every_parameter(tvm, arith_tokenizer):
    # two prompts; correct paths end in token 50, wrong ones in 60: the value at the end must learn the difference
    paths = []
    for i in range(32):
        ok = i % 2 == 0
        response = [10 + i % 5, 20, 50 if ok else 60, arith_tokenizer.eos_token_id]
        paths.append(LabelledPath(f"p{i % 2}", [5, 6, 7], response, [0.5, 0.5, float(ok), float(ok)], ok, ""))
    before = {n: p.detach().clone() for n, p in tvm.named_parameters()}
    from prm.tvm.pipeline import tvm_loss_fn

    loss_fn = tvm_loss_fn("mse", "sigmoid", lm_coef=0.1)
    history = fit(tvm, paths, lambda rows: collate(rows, arith_tokenizer.pad_token_id), loss_fn,
                  FitConfig(lr=3e-3, epochs=15, batch_size=8, log_every=5), seed=0, cpu=True, name="tvm")
    assert history[-1]["value_loss"] < 0.5 * history[0]["value_loss"]
    assert "lm_loss" in history[-1]
    assert all(not torch.equal(before[n], p) for n, p in tvm.named_parameters())
    batch = collate(paths[:2], arith_tokenizer.pad_token_id)
    with torch.no_grad():
        v = tvm.values(batch["input_ids"], batch["attention_mask"])
    assert v[0, -1] > 0.7 and v[1, -1] < 0.3


def test_collate_masks_the_response_and_keeps_the_end():
    p = LabelledPath("x", [1, 2, 3], [4, 5], [0.25, 1.0], True, "")
    b = collate([p, LabelledPath("y", [1], [9], [0.0], False, "")], pad_token_id=0)
    assert b["input_ids"].tolist() == [[1, 2, 3, 4, 5], [1, 9, 0, 0, 0]]
    assert b["label_mask"].tolist() == [[False, False, False, True, True], [False, True, False, False, False]]
    assert b["labels"][0].tolist() == [0, 0, 0, 0.25, 1.0]
    cut = collate([p], pad_token_id=0, max_length=3)
    assert cut["input_ids"].tolist() == [[3, 4, 5]] and cut["labels"][0].tolist() == [0, 0.25, 1.0]
