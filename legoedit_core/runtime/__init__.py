"""The model runtime: the only way any model is obtained (see ``runtime.py``)."""

from legoedit_core.runtime.loading import Adapter, ModelKey, estimate_bytes, from_pretrained
from legoedit_core.runtime.runtime import ModelRuntime, ModelUse

__all__ = ["Adapter", "ModelKey", "ModelRuntime", "ModelUse", "estimate_bytes", "from_pretrained"]
