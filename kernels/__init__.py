"""Triton kernels, one folder per op (fla-style): naive.py references, chunk.py for training, fused_recurrent.py for
decoding. Importing this package imports neither Triton nor any kernel module."""
