"""Rollout engines behind one interface (``RolloutEngine``): hf, native (lightning policy), vllm."""
