"""The Builder's processor for training: tokenizer + image processor, without the video processor.

TRL trains a vision-language model when its ``processing_class`` is a ``ProcessorMixin``. The combined Qwen2-VL
processor that ``AutoProcessor`` loads also builds a video processor, which needs torchvision; this project does not
depend on torchvision (see docs/rl.md). ``BuilderProcessor`` is Qwen2-VL's processor with only the two parts the
Builder uses, loaded apart with ``AutoTokenizer`` and ``AutoImageProcessor`` (the slow Pillow image processor where
torchvision is missing), so training expands the image placeholder exactly as the transformers engine does.
"""

from __future__ import annotations

from typing import Any

from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor


class BuilderProcessor(Qwen2VLProcessor):
    """Qwen2-VL's processor with an image processor and a tokenizer only (no video)."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


def load_processor(model: str) -> BuilderProcessor:
    """The processor of a Qwen2-VL-class checkpoint (hub id or local path), with the tokenizer's chat template."""
    from transformers import AutoImageProcessor, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return BuilderProcessor(AutoImageProcessor.from_pretrained(model), tokenizer,
                            chat_template=tokenizer.chat_template)
