"""How many bytes a model will hold on its device, known before it is loaded.

- ``diffusers.*`` / ``transformers.*`` / ``vlm.*`` / ``embedding.*`` kinds on a directory (a local path, or a hub id
  found in the cache): the tensors listed in the safetensors headers, floating ones at the key's dtype (the
  header is the first few kilobytes of each file; no weight is read). ``.bin`` / ``.pt`` weights count their file
  size. A pipeline offloaded to the CPU (``cpu_offload``) holds one component at a time: its largest sub-folder.
- Processors, tokenizers, feature extractors: 0 (they hold no device memory).
- ``vllm.*``: the engine's own figure, ``gpu_memory_utilization`` (vLLM's default 0.9) of the device's total memory:
  vLLM claims that much up front, weights and KV cache together.
- Any kind whose source is a file (an ONNX session, an OpenCV cascade): the file's size; a folder of ONNX models
  (the OCR engine's): their sizes summed.

Anything else is unknown (None): the runtime then measures it right after loading and evicts to fit.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from legoedit_core.runtime.loading import ModelKey

DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1}
# safetensors dtype codes of floating tensors (converted to the key's dtype on load) and bytes per element of all.
_FLOATING = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}
_ELEMENT_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4,
                  "I16": 2, "I8": 1, "U8": 1, "BOOL": 1, "U16": 2, "U32": 4, "U64": 8}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx")
STATELESS = ("Processor", "Tokenizer", "TokenizerFast", "FeatureExtractor")
VLLM_DEFAULT_UTILIZATION = 0.9


def size_before_load(key: ModelKey, device_total: int | None) -> int | None:
    """Bytes ``key`` will hold on ``key.device`` once loaded, or None when that cannot be told beforehand.

    ``device_total`` is the device's total memory (for engines that claim a share of it), None when unknown.
    """
    library, _, name = key.kind.partition(".")
    if name.endswith(STATELESS):
        return 0
    if library == "vllm":
        share = json.loads(key.options or "{}").get("gpu_memory_utilization", VLLM_DEFAULT_UTILIZATION)
        return int(float(share) * device_total) if device_total else None
    path = local_path(key.source)
    if path is None:
        return None
    if path.is_file():
        return path.stat().st_size
    folders = _weights_by_folder(path)
    if not folders:
        return None
    sizes = [sum(_file_bytes(file, key.dtype) for file in files) for files in folders.values()]
    return max(sizes) if key.cpu_offload else sum(sizes)


def local_path(source: str) -> Path | None:
    """``source`` as a local file or directory: itself, or a hub id's cached snapshot; None when neither."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    if source.count("/") != 1:  # not a hub id (owner/name)
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source, local_files_only=True))
    except Exception:  # not cached, or not a valid id: unknown, not an error (the load itself will say)
        return None


def safetensors_bytes(file: Path, dtype: str) -> int:
    """Bytes of the tensors in a safetensors file once loaded with floating tensors in ``dtype``."""
    with file.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    target = DTYPE_BYTES.get(dtype)
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        count = 1
        for dim in entry["shape"]:
            count *= dim
        code = entry["dtype"]
        total += count * (target if target and code in _FLOATING else _ELEMENT_BYTES.get(code, 4))
    return total


def _file_bytes(file: Path, dtype: str) -> int:
    return safetensors_bytes(file, dtype) if file.suffix == ".safetensors" else file.stat().st_size


def _weights_by_folder(root: Path) -> dict[Path, list[Path]]:
    """Weight files per folder (a pipeline has one folder per component); a folder that has plain weights
    ignores its variants (``model.fp16.safetensors`` beside ``model.safetensors``) and its other formats."""
    folders: dict[Path, list[Path]] = {}
    for file in sorted(root.rglob("*")):
        if file.suffix in WEIGHT_SUFFIXES and file.is_file():
            folders.setdefault(file.parent, []).append(file)
    return {folder: _preferred(files) for folder, files in folders.items()}


def _preferred(files: list[Path]) -> list[Path]:
    safetensors = [f for f in files if f.suffix == ".safetensors"] or files  # .bin beside .safetensors: a copy
    plain = [f for f in safetensors if "." not in f.name.removesuffix(f.suffix)]
    return plain or safetensors
