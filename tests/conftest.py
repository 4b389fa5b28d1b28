"""Test-session setup: Triton's interpreter on CPU-only machines, and hardware markers that skip with a reason."""

import os

import torch

# Triton reads this when its @triton.jit decorators run, so it must be set before any kernel module is imported.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU; none is visible on this machine")
    skip_lean = pytest.mark.skip(reason="needs LEAN_PROJECT pointing at a Lean 4 project with Mathlib and the REPL built")
    skip_slow = pytest.mark.skip(reason="slow; pass --runslow to run it")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
        if "lean_real" in item.keywords and not os.environ.get("LEAN_PROJECT"):
            item.add_marker(skip_lean)
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(skip_slow)
