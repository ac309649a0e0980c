"""The transformers engine: a Qwen2-VL-class model through ``from_pretrained``, batched ``generate``.

The tokenizer and the image processor are loaded separately (the combined processor needs torchvision), so the
image placeholder of the chat template is expanded here: one ``<|image_pad|>`` per merged patch. Constrained
decoding uses xgrammar's logits processor with the grammar of ``legoedit_core.planners.grammar``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from legoedit_core.planners.chat import Chat, GenerationError, OutputFormat, hf_messages
from legoedit_core.planners.grammar import build_grammar
from legoedit_core.planners.settings import PlannerSettings

IMAGE_TOKEN = "<|image_pad|>"


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    image_processor: Any
    compiler: Any


class TransformersEngine:
    """Generates answers for many chats in one left-padded ``generate`` call."""

    def __init__(self, settings: PlannerSettings) -> None:
        if not settings.model:
            raise ValueError("the transformers engine needs planner.model (a hub id or a local path)")
        self.settings = settings
        self.name = f"transformers:{settings.model}"
        self._loaded: _Loaded | None = None
        self._grammars: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _load(self) -> _Loaded:
        with self._lock:
            if self._loaded is None:
                self._loaded = _load(self.settings)
            return self._loaded

    def _compiled(self, loaded: _Loaded, fmt: OutputFormat) -> Any:
        key = json.dumps([fmt.json_schema, fmt.regex, fmt.think, fmt.max_think_chars], sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = loaded.compiler.compile_grammar(build_grammar(fmt))
        return self._grammars[key]

    def generate(self, chats: list[Chat], fmt: OutputFormat | None, seeds: list[int]) -> list[str | GenerationError]:
        """One answer per chat; ``fmt`` (when given) constrains every answer."""
        import torch
        from xgrammar.contrib.hf import LogitsProcessor

        loaded = self._load()
        tokenizer, settings = loaded.tokenizer, self.settings
        prompts, images = [], []
        for chat in chats:
            messages, chat_images = hf_messages(chat)
            prompts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
            images += chat_images
        vision: dict[str, Any] = {}
        if images:
            vision = dict(loaded.image_processor(images=images, return_tensors="pt"))
            prompts = _expand_image_tokens(prompts, vision["image_grid_thw"], loaded.image_processor.merge_size)
        batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        processors = [LogitsProcessor(self._compiled(loaded, fmt))] if fmt is not None else []
        sampling = {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p} \
            if settings.temperature > 0 else {"do_sample": False}
        torch.manual_seed(_batch_seed(seeds))
        with torch.inference_mode():
            output = loaded.model.generate(
                **batch.to(loaded.model.device), **{k: v.to(loaded.model.device) for k, v in vision.items()},
                max_new_tokens=settings.max_new_tokens, logits_processor=processors,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **sampling,
            )
        return tokenizer.batch_decode(output[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)


def _load(settings: PlannerSettings) -> _Loaded:
    import torch
    import xgrammar as xgr
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    model = AutoModelForImageTextToText.from_pretrained(
        settings.model, dtype=getattr(torch, settings.dtype), **settings.engine_args)
    if settings.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, settings.adapter)
    model = model.to(settings.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(settings.model, padding_side="left")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    image_processor = AutoImageProcessor.from_pretrained(settings.model)
    vocab_size = model.config.get_text_config().vocab_size
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=[tokenizer.eos_token_id])
    return _Loaded(model, tokenizer, image_processor, xgr.GrammarCompiler(info))


def _expand_image_tokens(prompts: list[str], grid_thw: Any, merge_size: int) -> list[str]:
    """Replace each image placeholder with as many placeholders as that image has merged patches."""
    counts = iter(int(n) for n in grid_thw.prod(dim=-1) // merge_size**2)
    expanded = []
    for prompt in prompts:
        pieces = prompt.split(IMAGE_TOKEN)
        out = pieces[0]
        for piece in pieces[1:]:
            out += IMAGE_TOKEN * next(counts) + piece
        expanded.append(out)
    return expanded


def _batch_seed(seeds: list[int]) -> int:
    """One seed for a batched call, derived from every item's seed (sampling in a batch shares one generator)."""
    return hash(tuple(seeds)) & (2**63 - 1)
