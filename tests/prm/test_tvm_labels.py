"""``token_value_labels`` against a brute-force prefix count, plus the small cases worked by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prm.tvm import token_value_labels
from prm.tvm.labels import pad_paths, token_value_labels_array


def brute_force(paths, correct):
    """V[n][k] = correct share among ALL paths whose first k+1 tokens equal path n's (quadratic, obviously right)."""
    out = []
    for path in paths:
        row = []
        for k in range(len(path)):
            prefix = list(path[: k + 1])
            sharing = [c for p, c in zip(paths, correct) if list(p[: k + 1]) == prefix]
            row.append(sum(sharing) / len(sharing))
        out.append(row)
    return out


# small alphabets and short paths make shared prefixes, duplicates and prefix-of-another paths common
path_sets = st.integers(1, 24).flatmap(
    lambda n: st.tuples(
        st.lists(st.lists(st.integers(0, 3), min_size=0, max_size=7), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)


@settings(max_examples=300, deadline=None)
@given(path_sets)
def test_equals_brute_force_prefix_count(data):
    paths, correct = data
    got = token_value_labels(paths, correct)
    want = brute_force(paths, correct)
    assert [len(r) for r in got] == [len(p) for p in paths]
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(path_sets)
def test_array_form_matches_list_form_and_zeroes_padding(data):
    paths, correct = data
    tokens, lengths = pad_paths(paths)
    arr = token_value_labels_array(tokens, lengths, np.array(correct, dtype=bool))
    for i, row in enumerate(token_value_labels(paths, correct)):
        assert arr[i, : len(row)].tolist() == pytest.approx(row, abs=1e-12)
        assert not arr[i, len(row):].any()


def test_hand_worked_example():
    # prefix [1]: paths 0-3, correct 0 and 2 -> 1/2; [1, 2]: paths 0, 1, 3 -> 1/3; [1, 2, 3]: paths 0, 3 -> 1/2
    paths = [[1, 2, 3], [1, 2, 4], [1, 5], [1, 2, 3, 7]]
    labels = token_value_labels(paths, [True, False, True, False])
    assert labels == [[0.5, 1 / 3, 0.5], [0.5, 1 / 3, 0.0], [0.5, 1.0], [0.5, 1 / 3, 0.5, 0.0]]


def test_a_wrong_branch_zeroes_only_after_it_diverges():
    labels = token_value_labels([[7, 8, 9, 10], [7, 8, 4, 4]], [True, False])
    assert labels == [[0.5, 0.5, 1.0, 1.0], [0.5, 0.5, 0.0, 0.0]]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="2 paths but 1 correctness"):
        token_value_labels([[1], [2]], [True])
    with pytest.raises(ValueError, match="token ids must be"):
        token_value_labels([[1, -3]], [True])
    assert token_value_labels([], []) == []
    assert token_value_labels([[], []], [True, False]) == [[], []]
