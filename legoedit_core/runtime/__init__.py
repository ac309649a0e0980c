"""The model runtime: the only way any model is obtained (see ``runtime.py``)."""

from legoedit_core.runtime.loading import Adapter, ModelKey, estimate_bytes, from_pretrained
from legoedit_core.runtime.memory import DeviceMemory, TorchDeviceMemory
from legoedit_core.runtime.runtime import ModelDoesNotFit, ModelRuntime, ModelUse
from legoedit_core.runtime.sizing import size_before_load

__all__ = ["Adapter", "DeviceMemory", "ModelDoesNotFit", "ModelKey", "ModelRuntime", "ModelUse", "TorchDeviceMemory",
           "estimate_bytes", "from_pretrained", "size_before_load"]
