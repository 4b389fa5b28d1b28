"""Benchmark: ``token_value_labels`` on 100k paths x 256 tokens (target < 10 s on one core).

    taskset -c 0 python -m prm.tvm.bench_labels [--paths 100000] [--length 256] [--vocab 32000]

Paths are drawn as a random branching tree (each path copies a random earlier path up to a random depth, then
diverges), so prefixes are shared as in real samples of one question. Also times a plain dict trie on a slice
for a side-by-side ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from prm.tvm.labels import pad_paths, token_value_labels, token_value_labels_array


def branching_paths(n: int, length: int, vocab: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, size=(n, length))
    parents = rng.integers(0, np.maximum(np.arange(n), 1))
    shared = rng.integers(0, length, size=n)
    for i in range(1, n):
        tokens[i, : shared[i]] = tokens[parents[i], : shared[i]]
    return tokens.tolist()


def dict_trie_labels(paths: list[list[int]], correct: list[bool]) -> list[list[float]]:
    """The textbook trie, for the ratio: one dict node per prefix, two passes over every token."""
    root: dict = {}
    for path, ok in zip(paths, correct):
        node = root
        for t in path:
            node = node.setdefault(t, {"#": [0, 0]})
            node["#"][0] += 1
            node["#"][1] += ok
    out = []
    for path in paths:
        node, row = root, []
        for t in path:
            node = node[t]
            row.append(node["#"][1] / node["#"][0])
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paths", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=32_000)
    ap.add_argument("--ratio-slice", type=int, default=10_000, help="paths timed for the dict-trie comparison")
    args = ap.parse_args()
    paths = branching_paths(args.paths, args.length, args.vocab)
    correct = (np.random.default_rng(1).random(args.paths) < 0.4).tolist()
    t0, c0 = time.perf_counter(), time.process_time()
    labels = token_value_labels(paths, correct)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    tokens = args.paths * args.length
    # CPU time is what the target is about; wall time also counts other processes sharing the core
    print(f"token_value_labels: {args.paths} paths x {args.length} tokens = {tokens / 1e6:.1f}M tokens: "
          f"{cpu:.2f} s CPU, {dt:.2f} s wall ({tokens / cpu / 1e6:.1f}M tokens per CPU-second); "
          f"target < 10 s: {'met' if cpu < 10 else 'MISSED'}")
    tokens, lengths = pad_paths(paths)
    t0, c0 = time.perf_counter(), time.process_time()
    token_value_labels_array(tokens, lengths, np.asarray(correct))
    print(f"token_value_labels_array (padded array in and out): {time.process_time() - c0:.2f} s CPU, "
          f"{time.perf_counter() - t0:.2f} s wall")
    k = min(args.ratio_slice, args.paths)
    t0 = time.perf_counter()
    ours = token_value_labels(paths[:k], correct[:k])
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = dict_trie_labels(paths[:k], correct[:k])
    t_ref = time.perf_counter() - t0
    assert np.allclose(np.array(ours), np.array(ref)), "sorted-run labels disagree with the dict trie"
    print(f"slice of {k} paths: sorted runs {t_ours:.2f} s, dict trie {t_ref:.2f} s, ratio {t_ref / t_ours:.1f}x")
    assert len(labels) == args.paths


if __name__ == "__main__":
    main()
