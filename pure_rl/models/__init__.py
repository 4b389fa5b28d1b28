"""The lightning-attention policy, HF-compatible: ``AutoModelForCausalLM`` knows it once this package is imported.

from pure_rl.models import LightningConfig, LightningForCausalLM
model = LightningForCausalLM(LightningConfig(vocab_size=..., hidden_size=...))
model.save_pretrained(path); AutoModelForCausalLM.from_pretrained(path)  # after importing pure_rl.models
"""

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

from pure_rl.models.cache import LightningCache
from pure_rl.models.configuration_lightning import LIGHTNING, SOFTMAX, LightningConfig
from pure_rl.models.modeling_lightning import LightningForCausalLM, LightningModel, LightningPreTrainedModel

AutoConfig.register(LightningConfig.model_type, LightningConfig, exist_ok=True)
AutoModel.register(LightningConfig, LightningModel, exist_ok=True)
AutoModelForCausalLM.register(LightningConfig, LightningForCausalLM, exist_ok=True)

__all__ = [
    "LIGHTNING",
    "SOFTMAX",
    "LightningCache",
    "LightningConfig",
    "LightningForCausalLM",
    "LightningModel",
    "LightningPreTrainedModel",
]
