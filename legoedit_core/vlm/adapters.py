"""Per-model-family chat adapters: how a family's prompt shows an image, for the transformers engine.

The chat template writes one image placeholder per image; the model expects as many placeholder tokens as the
image has embeddings, a count that only the family knows. Transformers' combined processors do this expansion,
but they need torchvision here, so the engine loads tokenizer and image processor separately and asks the
family's adapter. A family is picked by the model's ``config.model_type``; a model of another family fails to
load with a message naming the families there are adapters for.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChatAdapter(ABC):
    """One family's image placeholder and how many of them each image takes."""

    model_types: tuple[str, ...]
    image_token: str

    @abstractmethod
    def tokens_per_image(self, vision: dict[str, Any], image_processor: Any, config: Any) -> list[int]:
        """Placeholder tokens each image of a batch takes, in order, from the image processor's output and the
        model's config."""

    def expand(self, prompts: list[str], vision: dict[str, Any], image_processor: Any, config: Any) -> list[str]:
        """Replace each image placeholder of ``prompts`` (images in order across prompts) by its full count."""
        counts = iter(self.tokens_per_image(vision, image_processor, config))
        expanded = []
        for prompt in prompts:
            pieces = prompt.split(self.image_token)
            out = pieces[0]
            for piece in pieces[1:]:
                out += self.image_token * next(counts) + piece
            expanded.append(out)
        return expanded


class QwenVLAdapter(ChatAdapter):
    """Qwen2-VL, Qwen2.5-VL: one ``<|image_pad|>`` per merged patch (grid t x h x w over merge_size squared)."""

    def tokens_per_image(self, vision: dict[str, Any], image_processor: Any, config: Any) -> list[int]:
        grid = vision["image_grid_thw"]
        return [int(n) for n in grid.prod(dim=-1) // image_processor.merge_size**2]


class LlavaAdapter(ChatAdapter):
    """LLaVA (1.5): one ``<image>`` per vision patch of the (fixed-size) image, plus the CLS token when the model
    keeps it (``vision_feature_select_strategy = "full"``)."""

    def tokens_per_image(self, vision: dict[str, Any], image_processor: Any, config: Any) -> list[int]:
        pixels = vision["pixel_values"]
        patch = config.vision_config.patch_size
        count = (pixels.shape[-2] // patch) * (pixels.shape[-1] // patch)
        count += config.vision_feature_select_strategy == "full"
        return [count] * pixels.shape[0]


ADAPTERS: tuple[ChatAdapter, ...] = (QwenVLAdapter(("qwen2_vl", "qwen2_5_vl"), "<|image_pad|>"),
                                     LlavaAdapter(("llava",), "<image>"))


def chat_adapter(model_type: str) -> ChatAdapter:
    """The adapter of the family ``model_type`` belongs to; ValueError naming the known families otherwise."""
    for adapter in ADAPTERS:
        if model_type in adapter.model_types:
            return adapter
    known = ", ".join(t for adapter in ADAPTERS for t in adapter.model_types)
    raise ValueError(f"the transformers engine has no chat adapter for model type {model_type!r} (known: {known}); "
                     "add one in legoedit_core/vlm/adapters.py, or serve the model with vllm / an OpenAI endpoint")
