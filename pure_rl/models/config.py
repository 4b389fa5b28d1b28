"""The model section of a config: what to load (a name of ``MODEL_LOADERS``, a hub id, a folder, a GGUF file) and how.

Shared by every CLI that loads a policy (``pure_rl.train``, ``prm.train``, ``evals.run``), so it lives with the
models, not with the trainer's schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pure_rl.core.registry import DEFAULT_TASK


@dataclass
class LoRAConfig:
    r: int = 0  # LoRA rank; 0 = full fine-tuning
    alpha: int = 16  # LoRA scaling numerator (scale = alpha / r)
    dropout: float = 0.0  # dropout on the LoRA branch
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])  # module names


@dataclass
class TinyModelConfig:
    arch: str = "llama"  # llama | lightning: architecture of the tiny policy built from this config
    hidden_size: int = 128  # model width
    num_layers: int = 2  # transformer blocks
    num_heads: int = 4  # attention heads
    intermediate_size: int = 384  # MLP width
    vocab_size: int = 400  # byte-level BPE vocabulary trained offline on the task's text (>= 259: bytes + specials)
    lightning: dict[str, Any] = field(default_factory=dict)  # extra LightningConfig fields for arch=lightning (conv_size, decay, ...)


@dataclass
class WarmStartConfig:
    steps: int = 0  # supervised steps on task demonstrations before RL; 0 = none
    batch_size: int = 32  # demonstrations per supervised step
    lr: float = 3e-3  # supervised learning rate
    demo_error_rate: float = 0.0  # fraction of demonstrations with one arithmetic slip (a realistic, imperfect SFT set)
    demo_early_stop_rate: float = 0.0  # fraction of demonstrations that box their answer one operation too early
    cache: bool = True  # reuse a warm-start checkpoint with the same settings (keyed by their hash)


@dataclass
class ModelConfig:
    name: str = "tiny"  # a MODEL_LOADERS name (tiny: built from model.tiny and warm-started; smollm2-135m-instruct), a hub id or a local path
    path: str | None = None  # local folder or hub id; overrides name when set
    gguf_file: str | None = None  # GGUF file inside path (or an absolute path) to load and convert
    dtype: str = "float32"  # float32 | bfloat16 | float16 for the trained weights
    init: str = "pretrained"  # pretrained | random: the architecture from a config (pure_rl/models/configs), random weights; throughput runs only, no accuracy
    gradient_checkpointing: bool = False  # trade compute for activation memory
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)


@dataclass
class RecipeTask:
    name: str = DEFAULT_TASK  # the task whose demonstrations warm-start a tiny model
    kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments of the task


@dataclass
class RecipePolicy:
    """The part of a training recipe that decides its policy's weights (another CLI reads only this part)."""

    seed: int = 0  # the warm start's seed
    model: ModelConfig = field(default_factory=ModelConfig)
    task: RecipeTask = field(default_factory=RecipeTask)
