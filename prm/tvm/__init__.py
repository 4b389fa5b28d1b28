"""Token-supervised value models: labels, the value-head model, data generation and the scorer (``prm.tvm.scorer``)."""

from prm.tvm.labels import token_value_labels

__all__ = ["token_value_labels"]
