"""Named components and ``module:attr`` import strings, one lookup path for built-ins and plugins.

A registry maps a short name to an object or to a lazy ``"module:attr"`` string, so the trainer can name
``reward.prm=tvm`` without importing every PRM (and Lean clients, and Triton) at start-up. Any value that
contains ``:`` and is not a known name is imported as ``module:attr``: ``reward.prm=my_pkg.my_prm:MyPRM``.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable


class RegistryError(ValueError):
    """An unknown name, or an import string that does not resolve."""


def import_string(spec: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute."""
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path:
        raise RegistryError(f"import string {spec!r} must look like 'package.module:attr'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(f"cannot import module {module_name!r} from {spec!r}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise RegistryError(f"module {module_name!r} has no attribute {attr_path!r} (from {spec!r})") from exc
    return obj


class Registry:
    """A name -> component table; values are objects or lazy ``"module:attr"`` strings."""

    def __init__(self, kind: str, lazy: dict[str, str] | None = None):
        self.kind = kind
        self._entries: dict[str, Any] = dict(lazy or {})

    def register(self, name: str, obj: Any = None) -> Callable[[Any], Any] | Any:
        """Register ``obj`` under ``name``; without ``obj`` it works as a decorator."""
        if obj is not None:
            self._entries[name] = obj
            return obj

        def decorator(target: Any) -> Any:
            self._entries[name] = target
            return target

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries or self.is_import_string(name)

    @staticmethod
    def is_import_string(name: str) -> bool:
        return ":" in name and not name.startswith(":") and not name.endswith(":")

    def check(self, name: str) -> None:
        """Raise a one-line error if ``name`` is neither registered nor an import string (no import happens)."""
        if name in self._entries or self.is_import_string(name):
            return
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise RegistryError(
            f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}, or a 'module:attr' import string.{hint}"
        )

    def get(self, name: str) -> Any:
        """Resolve ``name`` to the registered object, importing lazily."""
        self.check(name)
        entry = self._entries.get(name, name)
        if isinstance(entry, str):
            resolved = import_string(entry)
            if name in self._entries:
                self._entries[name] = resolved
            return resolved
        return entry

    def build(self, name: str, **kwargs: Any) -> Any:
        """Resolve ``name`` and call it with ``kwargs`` (classes and factories alike)."""
        target = self.get(name)
        return target(**kwargs) if callable(target) else target


# The project's registries. Built-ins are lazy strings so importing the trainer imports none of them.
VERIFIERS = Registry(
    "verifier",
    lazy={
        "math": "evals.verifier:MathVerifier",
        "lean": "lean_env.verifier:LeanVerifier",
        "none": "pure_rl.core.null:NoVerifier",
    },
)
PRMS = Registry(
    "prm",
    lazy={
        "arith": "prm.arith:ArithPRM",
        "hf_token_classifier": "prm.hf_classifier:HFTokenClassifierPRM",
        "qwen_prm": "prm.qwen_prm:QwenPRM",
        "tvm": "prm.tvm.scorer:TVMScorer",
        "remote": "prm.remote:RemotePRM",
        "none": "pure_rl.core.null:NoPRM",
    },
)
DEFAULT_TASK = "arith"  # the embedded task: synthetic, no downloads
TASKS = Registry(
    "task",
    lazy={
        "arith": "evals.arith:ArithTask",
        "gsm8k": "evals.tasks:GSM8KTask",
        "math500": "evals.tasks:MATH500Task",
        "math": "evals.tasks:MATHTrainTask",
        "minif2f": "evals.minif2f:MiniF2FTask",
    },
)
ROLLOUT_ENGINES = Registry(
    "rollout engine",
    lazy={
        "hf": "pure_rl.rollout.hf:HFRolloutEngine",
        "native": "pure_rl.rollout.native:NativeRolloutEngine",
        "vllm": "pure_rl.rollout.vllm:VLLMRolloutEngine",
    },
)
CREDIT_FORMS = Registry(
    "credit form",
    lazy={
        "min": "pure_rl.credit:min_form",
        "hardmin": "pure_rl.credit:hardmin_form",
        "sum": "pure_rl.credit:sum_form",
    },
)
# Loaders are called as loader(model_cfg, task=, task_kwargs=, seed=) -> (model, tokenizer); model.name picks one,
# anything else is a hub id or a folder (pure_rl.models.loading.load_model).
MODEL_LOADERS = Registry(
    "model loader",
    lazy={
        "tiny": "pure_rl.models.tiny:load_tiny",
        "smollm2-135m-instruct": "pure_rl.models.loading:load_pretrained",  # the GGUF file packaged on PyPI
    },
)
LEAN_BACKENDS = Registry(
    "lean backend",
    lazy={
        "repl": "lean_env.backends.repl:ReplBackend",
        "kimina": "lean_env.backends.kimina:KiminaBackend",
        "cli": "lean_env.backends.cli:CliBackend",
    },
)
