import pytest


@pytest.fixture(scope="session")
def pure_cache(tmp_path_factory):
    """One warm-start cache for the whole session, so tiny policies are trained once."""
    return tmp_path_factory.mktemp("pure_rl_cache")


@pytest.fixture
def tiny_args(tmp_path, pure_cache, monkeypatch):
    """Overrides for a seconds-long run of the embedded default in ``tmp_path/run``."""
    monkeypatch.setenv("PURE_RL_CACHE", str(pure_cache))

    def make(*extra: str, run: str = "run") -> list[str]:
        return [
            f"output_dir={tmp_path / run}", "model.tiny.hidden_size=32", "model.tiny.num_layers=1",
            "model.tiny.num_heads=2", "model.tiny.intermediate_size=64", "model.warm_start.steps=40",
            "task.eval_size=16", "task.eval_every=2", "rollout.prompts_per_step=4", "rollout.group_size=4",
            "rollout.max_new_tokens=24", "train.steps=3", "train.save_every=1", "train.keep_checkpoints=5",
            "log.progress=false", "log.tensorboard=false", "optim.micro_batch_size=8", "optim.lr=1e-3",
            *extra,
        ]

    return make
