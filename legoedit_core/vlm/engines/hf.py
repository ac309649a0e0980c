"""The transformers engine: a VLM through ``from_pretrained``, batched ``generate``.

The tokenizer and the image processor are loaded separately (the combined processor needs torchvision), so the
image placeholders of the chat template are expanded by the model family's chat adapter
(``legoedit_core.vlm.adapters``). Constrained decoding uses xgrammar's logits processor with the grammar of
``legoedit_core.vlm.grammar``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from legoedit_core.runtime import Adapter, ModelKey, ModelRuntime
from legoedit_core.runtime.loading import AdapterApi, on_model
from legoedit_core.settings.engine import EngineSettings
from legoedit_core.vlm.adapters import ChatAdapter, chat_adapter
from legoedit_core.vlm.chat import Chat, GenerationError, OutputFormat, hf_messages
from legoedit_core.vlm.grammar import build_grammar


@dataclass
class _Loaded:
    """One loaded VLM with everything that is bound to it; owned by the model runtime, shared by every role."""

    model: Any
    tokenizer: Any
    image_processor: Any
    chat: ChatAdapter
    compiler: Any
    grammars: dict[str, Any] = field(default_factory=dict)

    def parameters(self) -> Any:  # what the runtime measures: the model's tensors
        return self.model.parameters()

    def buffers(self) -> Any:
        return self.model.buffers()

    def compiled(self, fmt: OutputFormat) -> Any:
        key = json.dumps([fmt.json_schema, fmt.regex, fmt.think, fmt.max_think_chars], sort_keys=True)
        if key not in self.grammars:
            self.grammars[key] = self.compiler.compile_grammar(build_grammar(fmt))
        return self.grammars[key]


class TransformersEngine:
    """Generates answers for many chats in one left-padded ``generate`` call.

    The model is the runtime's: one copy per (model, dtype, device) serves every role that names it (Builder,
    ADD-PRED, CAP-PRED, judge), each role's LoRA adapter activated for its own calls. Greedy calls of equal
    settings from several threads are merged into one ``generate``.
    """

    def __init__(self, settings: EngineSettings, runtime: ModelRuntime | None = None) -> None:
        if not settings.model:
            raise ValueError("the transformers engine needs planner.model (a hub id or a local path)")
        self.settings = settings
        self.name = f"transformers:{settings.model}"
        self.runtime = runtime
        self.key = ModelKey("vlm.transformers", settings.model, settings.dtype, settings.device,
                            options=json.dumps(settings.engine_args, sort_keys=True, default=str))
        self.adapters = (Adapter.from_path(settings.adapter),) if settings.adapter else ()

    def generate(self, chats: list[Chat], fmt: OutputFormat | None, seeds: list[int]) -> list[str | GenerationError]:
        """One answer per chat; ``fmt`` (when given) constrains every answer."""
        greedy = self.settings.temperature == 0
        constraint = json.dumps(asdict(fmt), sort_keys=True) if fmt is not None else None
        merge = ("generate", constraint, self.settings.max_new_tokens) if greedy else None
        runtime = self.runtime or ModelRuntime.default()
        return runtime.call(self.key, lambda loaded, batch: self._generate(loaded, batch, fmt),
                            list(zip(chats, seeds, strict=True)), loader=_load, adapters=self.adapters,
                            adapter_api=PEFT_ADAPTERS, merge=merge)

    def _generate(self, loaded: _Loaded, batch: list[tuple[Chat, int]], fmt: OutputFormat | None) -> list[str]:
        import torch
        from xgrammar.contrib.hf import LogitsProcessor

        tokenizer, settings = loaded.tokenizer, self.settings
        prompts, images = [], []
        for chat, _ in batch:
            messages, chat_images = hf_messages(chat)
            prompts.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
            images += chat_images
        vision: dict[str, Any] = {}
        if images:
            vision = dict(loaded.image_processor(images=images, return_tensors="pt"))
            prompts = loaded.chat.expand(prompts, vision, loaded.image_processor, loaded.model.config)
        inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        processors = [LogitsProcessor(loaded.compiled(fmt))] if fmt is not None else []
        sampling = {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p} \
            if settings.temperature > 0 else {"do_sample": False}
        torch.manual_seed(_batch_seed([seed for _, seed in batch]))
        with torch.inference_mode():
            output = loaded.model.generate(
                **inputs.to(loaded.model.device), **on_model(vision, loaded.model),
                max_new_tokens=settings.max_new_tokens, logits_processor=processors,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **sampling,
            )
        return tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def _load(key: ModelKey) -> _Loaded:
    import torch
    import xgrammar as xgr
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    adapter = chat_adapter(AutoConfig.from_pretrained(key.source).model_type)  # before the weights: fail fast
    model = AutoModelForImageTextToText.from_pretrained(
        key.source, dtype=getattr(torch, key.dtype), **json.loads(key.options or "{}"))
    model = model.to(key.device).eval()
    tokenizer = AutoTokenizer.from_pretrained(key.source, padding_side="left")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    image_processor = AutoImageProcessor.from_pretrained(key.source)
    vocab_size = model.config.get_text_config().vocab_size
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=[tokenizer.eos_token_id])
    return _Loaded(model, tokenizer, image_processor, adapter, xgr.GrammarCompiler(info))


def _peft_activate(loaded: _Loaded, wanted: tuple[Adapter, ...]) -> None:
    loaded.model.enable_adapters()
    loaded.model.set_adapter([a.name for a in wanted] if len(wanted) > 1 else wanted[0].name)


# A role's adapter goes into the shared VLM through transformers' PEFT integration, by name.
PEFT_ADAPTERS = AdapterApi(load=lambda loaded, adapter: loaded.model.load_adapter(adapter.path,
                                                                                  adapter_name=adapter.name),
                           activate=_peft_activate, disable=lambda loaded: loaded.model.disable_adapters())


def _batch_seed(seeds: list[int]) -> int:
    """One seed for a batched call, derived from every item's seed (sampling in a batch shares one generator)."""
    return hash(tuple(seeds)) & (2**63 - 1)
