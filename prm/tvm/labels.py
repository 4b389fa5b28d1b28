"""Token-level value labels (TVM): the empirical probability that a path sharing a prefix ends correct.

For token k of path n, ``V[n, k] = #{m correct : path_m[:k+1] == path_n[:k+1]} / #{m : path_m[:k+1] == path_n[:k+1]}``
(arXiv 2407.12863). Every distinct prefix is a node of a prefix trie over token ids, and in lexicographic order
the paths below one node form one contiguous run. So after one sort of the paths, depth k's nodes are the runs
of depth k-1 split wherever token k changes, and each node's count and correct-count are segment sums: one
vectorised pass per depth. A path alone in its node keeps its own outcome as the label of every later token, so
it leaves the working set; the work is linear in the number of tokens that still share a prefix.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

PAD = -1  # below every real token id, so a finished path never joins a longer sibling's node


def pad_paths(paths: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad ragged token paths with ``PAD``: ([N, L] int64 tokens, [N] lengths)."""
    lengths = np.fromiter((len(p) for p in paths), dtype=np.int64, count=len(paths))
    width = int(lengths.max()) if len(paths) else 0
    if len(paths) and int(lengths.min()) == width:
        tokens = np.array(paths, dtype=np.int64).reshape(len(paths), width)  # rectangular: numpy's fast path
    else:
        tokens = np.full((len(paths), width), PAD, dtype=np.int64)
        flat = np.fromiter(itertools.chain.from_iterable(paths), dtype=np.int64, count=int(lengths.sum()))
        tokens[np.arange(width) < lengths[:, None]] = flat
    if tokens.size and (tokens.min() < PAD or tokens.max() >= 2**32 - 1):
        raise ValueError("token ids must be in [0, 2**32 - 1)")
    if tokens.size and (tokens[np.arange(width) < lengths[:, None]] < 0).any():
        raise ValueError("token ids must be >= 0")
    return tokens, lengths


def lexicographic_order(tokens: np.ndarray) -> np.ndarray:
    """Row order of ``tokens`` [N, L] sorting the rows lexicographically (PAD first), as one byte-string sort."""
    big_endian = (tokens + 1).astype(">u4")  # PAD -> 0; big-endian bytes compare like the numbers they encode
    keys = big_endian.view(f"S{4 * tokens.shape[1]}").ravel()
    return np.argsort(keys, kind="stable")


def shared_prefix_values(tokens: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the tokens whose prefix some other path shares, and where each path goes its own way.

    tokens  # [N, L] int, PAD after each path's end
    correct # [N] bool
    Returns (values [N, L] float64, filled where k < solo_from[n]; solo_from [N]: the first depth at which path n
    is alone in its trie node, from where its label is its own outcome).
    """
    N, L = tokens.shape
    values = np.zeros((N, L), dtype=np.float64)
    solo_from = np.full(N, L, dtype=np.int64)
    rows = lexicographic_order(tokens)  # paths still sharing a prefix, in trie order
    hits = correct[rows].astype(np.float64)
    node_start = np.zeros(N, dtype=bool)  # aligned with ``rows``: True where a node's run begins
    node_start[0] = True
    for k in range(L):
        if rows.size == 0:
            break
        tok = tokens[rows, k]
        node_start[1:] |= tok[1:] != tok[:-1]
        node = np.cumsum(node_start) - 1  # [A] trie node of each path's (k+1)-prefix
        counts = np.bincount(node)
        values[rows, k] = (np.bincount(node, weights=hits) / counts)[node]
        alone = (counts == 1)[node]
        if alone.any():
            # a lone path was its own run, so the path after it already starts a node: dropping it keeps runs intact
            solo_from[rows[alone]] = k + 1
            keep = ~alone
            rows, hits, node_start = rows[keep], hits[keep], node_start[keep]
    return values, solo_from


def token_value_labels_array(tokens: np.ndarray, lengths: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Array form of ``token_value_labels``: [N, L] float64, 0 where k >= lengths[n].

    tokens  # [N, L] int, PAD (-1) after each path's end
    lengths # [N]
    correct # [N] bool
    """
    correct = np.asarray(correct, dtype=bool)
    if tokens.shape[0] == 0 or tokens.shape[1] == 0:
        return np.zeros(tokens.shape, dtype=np.float64)
    values, solo_from = shared_prefix_values(tokens, correct)
    depth = np.arange(tokens.shape[1])[None, :]
    np.copyto(values, correct.astype(np.float64)[:, None], where=depth >= solo_from[:, None])
    values[depth >= lengths[:, None]] = 0.0
    return values


def token_value_labels(paths: Sequence[Sequence[int]], correct: Sequence[bool]) -> list[list[float]]:
    """For every token of every path, the fraction of paths sharing that exact prefix (token included) that are correct.

    Paths are the sampled responses of ONE question (the trie is per question); ``correct[n]`` says whether
    path n's final answer was graded correct.
    """
    if len(paths) != len(correct):
        raise ValueError(f"got {len(paths)} paths but {len(correct)} correctness flags")
    tokens, lengths = pad_paths(paths)
    if tokens.size == 0:
        return [[] for _ in paths]
    values, solo_from = shared_prefix_values(tokens, np.asarray(correct, dtype=bool))
    own = [1.0 if c else 0.0 for c in correct]
    # the lone tail is one repeated float: list repetition is far cheaper than 25M fresh float objects
    return [
        values[i, :s].tolist() + [own[i]] * (n - s) if s < n else values[i, :n].tolist()
        for i, (n, s) in enumerate(zip(lengths.tolist(), solo_from.tolist()))
    ]
