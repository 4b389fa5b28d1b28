"""Step segmentation on a real byte-level BPE tokenizer trained in the test (offline)."""

import pytest
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from pure_rl.steps import separator_token_ids, split_steps, step_end_indices

QWEN2_STYLE_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
CORPUS = [
    "Step one: 2 + 3 = 5.\n\nStep two: 5 * 4 = 20.\n\nThe answer is \\boxed{20}.",
    "First, 7 - 2 = 5.\n\n\nThen 5 + 1 = 6.\n\nSo \\boxed{6}.",
] + [f"We add {a} and {b}.\n\nThat gives {a + b}.\n\n\nSo \\boxed{{{a + b}}}." for a in range(40) for b in range(3)]


@pytest.fixture(scope="module")
def tokenizer():
    tok = Tokenizer(models.BPE())
    # Qwen2-style pre-tokenisation: punctuation keeps its trailing newlines, so BPE learns merged ".\n\n" tokens.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(QWEN2_STYLE_SPLIT), behavior="isolated"),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<eos>"])
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def test_separator_ids_include_merged_tokens(tokenizer):
    ids = separator_token_ids(tokenizer)
    texts = {tokenizer.decode([i]) for i in ids}
    assert "\n\n" in texts
    assert any(t != "\n\n" and t.endswith("\n\n") for t in texts), texts  # e.g. ".\n\n" or "\n\n\n"
    assert all(t.endswith("\n\n") for t in texts)
    assert not any(tokenizer.decode([i]).endswith("\n\n") for i in range(tokenizer.get_vocab_size()) if i not in ids)


def _batch(tokenizer, texts, pad_to=None):
    enc = [tokenizer.encode(t).ids for t in texts]
    T = pad_to or max(len(e) for e in enc)
    ids = torch.zeros(len(enc), T, dtype=torch.long)
    mask = torch.zeros(len(enc), T, dtype=torch.bool)
    for i, e in enumerate(enc):
        ids[i, : len(e)] = torch.tensor(e, dtype=torch.long)
        mask[i, : len(e)] = True
    return ids, mask, enc


def test_step_ends_on_real_text(tokenizer):
    sep = separator_token_ids(tokenizer)
    texts = [CORPUS[0], CORPUS[1], "no separator at all", ""]
    ids, mask, enc = _batch(tokenizer, texts, pad_to=60)
    ends = step_end_indices(ids, mask, sep)
    for i, e in enumerate(enc):
        row = [int(x) for x in ends[i] if x >= 0]
        steps = []
        start = 0
        for end in row:
            steps.append(tokenizer.decode(e[start : end + 1]))
            start = end + 1
        assert "".join(steps) == tokenizer.decode(e)  # steps tile the response exactly
        if i == 0:
            assert len(row) == 3 and steps[0].endswith("\n\n") and steps[1].endswith("\n\n")
        if i == 1:
            assert len(row) == 3 and steps[0].endswith("\n\n")
        if i == 2:
            assert row == [len(e) - 1]
        if i == 3:
            assert row == []
    assert (ends[3] == -1).all()


def test_last_token_separator_is_counted_once():
    ids = torch.tensor([[5, 9, 5, 9, 0]])
    mask = torch.tensor([[True, True, True, True, False]])
    assert step_end_indices(ids, mask, {9}).tolist() == [[1, 3]]


def test_padding_tokens_never_end_steps():
    ids = torch.tensor([[1, 2, 9, 9], [9, 9, 9, 9]])
    mask = torch.tensor([[True, True, False, False], [False, False, False, False]])
    assert step_end_indices(ids, mask, {9}).tolist() == [[1], [-1]]


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="response_mask"):
        step_end_indices(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.bool), {1})


# -------------------------------------------------------------- blank lines written as several tokens (SmolLM2)


def _ids(tokenizer, *pieces):
    """Token ids of text pieces and of single vocabulary tokens given as ("tok", byte-level token string)."""
    ids = []
    for piece in pieces:
        ids += [tokenizer.token_to_id(piece[1])] if isinstance(piece, tuple) else tokenizer.encode(piece).ids
    return ids


def _steps(tokenizer, ids):
    row = torch.tensor([ids])
    ends = [int(e) for e in step_end_indices(row, torch.ones_like(row, dtype=torch.bool), separator_token_ids(tokenizer))[0]]
    return split_steps(ids, ends, tokenizer.decode)


NL = ("tok", "Ċ")  # a lone "\n" token
NLNL = ("tok", "ĊĊ")


def test_separator_classes_on_a_real_bpe(tokenizer):
    sep = separator_token_ids(tokenizer)
    nl, nlnl = tokenizer.token_to_id("Ċ"), tokenizer.token_to_id("ĊĊ")
    assert nl not in sep and nlnl in sep and len(sep) == len(sep.whole)
    (head, tail), = sep.splits  # "\n\n" splits once: a token ending in "\n", then exactly "\n"
    assert tail == {nl} and {nl, nlnl} <= head
    assert all(tokenizer.decode([i]).endswith("\n") for i in head)
    assert {nl, nlnl} <= sep.blank and all(set(tokenizer.decode([i])) == {"\n"} for i in sep.blank)


def test_two_newline_tokens_end_a_step_at_the_second(tokenizer):
    ids = _ids(tokenizer, "First, 7 - 2 = 5.", NL, NL, "Then 5 + 1 = 6.")
    assert _steps(tokenizer, ids) == ["First, 7 - 2 = 5.\n\n", "Then 5 + 1 = 6."]


def test_a_run_of_newline_tokens_ends_one_step_at_its_last_token(tokenizer):
    for run in ([NL, NL, NL], [NLNL, NL], [NL, NLNL], [NLNL, NLNL]):
        ids = _ids(tokenizer, "First, 7 - 2 = 5.", *run, "Then 5 + 1 = 6.")
        steps = _steps(tokenizer, ids)
        assert len(steps) == 2 and steps[1] == "Then 5 + 1 = 6.", (run, steps)


def test_a_single_newline_is_not_a_step_break(tokenizer):
    ids = _ids(tokenizer, "First, 7 - 2 = 5.", NL, "Then 5 + 1 = 6.", NL)
    assert _steps(tokenizer, ids) == ["First, 7 - 2 = 5.\nThen 5 + 1 = 6.\n"]


def test_a_break_split_at_the_end_of_the_response_is_counted_once(tokenizer):
    ids = _ids(tokenizer, "So 6.", NL, NL)
    assert _steps(tokenizer, ids) == ["So 6.\n\n"]


def test_a_plain_id_set_keeps_the_single_token_rule(tokenizer):
    nl = tokenizer.token_to_id("Ċ")
    ids = torch.tensor([[5, nl, nl, 6]])
    assert step_end_indices(ids, torch.ones_like(ids, dtype=torch.bool), {nl}).tolist() == [[1, 2, 3]]
