"""ADD-PRED and CAP-PRED backends that ask a vision-language model (the Builder's kind) through a Builder engine.

Settings (``[bricks.ADD-PRED]`` / ``[bricks.CAP-PRED]``) are the engine settings of the Builder and the judge
(``EngineSettings``): ``model`` (required), ``engine`` (``transformers`` by default, or ``vllm`` / ``openai``),
``base_url``, ``device``, ``dtype``, ``image_size`` ... ADD-PRED asks for a box ``{"box": [x0, y0, x1, y1]}`` in
pixels of the image it was shown, under a JSON-Schema constraint, and returns it as a filled mask of the original
size. CAP-PRED returns a caption.
"""

from __future__ import annotations

import json
from importlib.util import find_spec
from typing import Any, ClassVar

from pydantic import ValidationError

from legoedit_core.bricks.spec import Backend, BrickError
from legoedit_core.settings.engine import EngineSettings
from legoedit_core.types import bbox_to_mask
from legoedit_core.vlm.chat import Chat, GenerationError, Message, OutputFormat, shown_image

ENGINE_PACKAGES = {"transformers": ("transformers", "xgrammar"), "vllm": ("vllm",), "openai": ("httpx",)}
BOX_PROMPT = ("You place new objects in photos. Given the image and an object, answer with the box where the object "
              'would naturally go, in pixels of the image you see, as {"box": [x0, y0, x1, y1]} with x0 < x1, y0 < y1.')
CAPTION_PROMPT = "You describe images. Answer with one plain sentence and nothing else."
CAPTION_REGEX = r"[^<>\x00-\x1f]{1,300}"


def vlm_settings(settings: dict[str, Any], max_new_tokens: int) -> EngineSettings:
    """EngineSettings for a brick's VLM: the brick's settings over the defaults (transformers, short answers)."""
    return EngineSettings.model_validate({"engine": "transformers", "max_new_tokens": max_new_tokens,
                                           "image_size": 448, **settings})


class _VLMBackend(Backend):
    """A backend whose model is a VLM reached through a Builder engine, built once on first use."""

    resource = "gpu"
    max_new_tokens: ClassVar[int] = 64
    setting_keys = frozenset(EngineSettings.model_fields)

    @classmethod
    def missing(cls, settings: dict[str, Any]) -> str | None:
        if not settings.get("model"):
            return f"needs a vision-language model: set bricks.{cls.brick}.model (a hub id or local path)"
        try:
            engine = vlm_settings(settings, cls.max_new_tokens)
        except ValidationError as error:
            return f"bad settings: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}"
        name = engine.engine or "transformers"
        absent = [p for p in ENGINE_PACKAGES[name] if find_spec(p) is None]
        return f"the {name} engine needs {', '.join(absent)}" if absent else None

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.engine_settings = vlm_settings(self.settings, self.max_new_tokens)
        self._engine = None

    def describe_needs(self) -> str:
        return f"{self.engine_settings.engine} {self.engine_settings.model}"

    def ask(self, chats: list[Chat], fmt: OutputFormat, seeds: list[int]) -> list[str | GenerationError]:
        if self._engine is None:
            from legoedit_core.vlm.engines import make_engine

            self._engine = make_engine(self.engine_settings)
        return self._engine.generate(chats, fmt, seeds)


def box_schema(size: int) -> dict[str, Any]:
    """``{"box": [x0, y0, x1, y1]}`` with integer pixel coordinates of an image at most ``size`` on a side."""
    coordinate = {"type": "integer", "minimum": 0, "maximum": size}
    return {"type": "object", "properties": {"box": {"type": "array", "items": coordinate, "minItems": 4,
                                                     "maxItems": 4}},
            "required": ["box"], "additionalProperties": False}


class VLMAddPred(_VLMBackend):
    brick = "ADD-PRED"
    name = "vlm"

    def run_batch(self, inputs: list[dict[str, Any]], seeds: list[int]) -> list[dict[str, Any] | BrickError]:
        size = self.engine_settings.image_size
        shown = [shown_image(item["image"], size) for item in inputs]
        chats = [[Message("system", BOX_PROMPT), Message("user", f"Object to add: {item['prompt']}", picture)]
                 for item, picture in zip(inputs, shown, strict=True)]
        answers = self.ask(chats, OutputFormat(json_schema=box_schema(size)), seeds)
        return [_box_mask(answer, item["image"], picture.size)
                for answer, item, picture in zip(answers, inputs, shown, strict=True)]


def _box_mask(answer: str | GenerationError, image: Any, shown_size: tuple[int, int]) -> dict[str, Any] | BrickError:
    """The answer's box, scaled from the shown image to the original, as a mask; a BrickError when unusable."""
    if isinstance(answer, GenerationError):
        return BrickError(f"the model gave no answer: {answer}")
    try:
        box = json.loads(answer)["box"]
        x0, y0, x1, y1 = (float(v) for v in box)
    except (ValueError, KeyError, TypeError):
        return BrickError(f"the model's answer is not a box {{\"box\": [x0, y0, x1, y1]}}: {answer[:120]!r}")
    height, width = image.shape[:2]
    sx, sy = width / shown_size[0], height / shown_size[1]
    scaled = (round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy))
    mask = bbox_to_mask(scaled, width, height)
    if not mask.any():
        return BrickError(f"the model's box {box} is empty or outside the image")
    return {"mask": mask}


class VLMCapPred(_VLMBackend):
    brick = "CAP-PRED"
    name = "vlm"
    max_new_tokens = 96

    def run_batch(self, inputs: list[dict[str, Any]], seeds: list[int]) -> list[dict[str, Any] | BrickError]:
        size = self.engine_settings.image_size
        chats = [[Message("system", CAPTION_PROMPT),
                  Message("user", "Caption this image" + (f", focusing on {item['prompt']}" if item["prompt"] else "")
                          + ".", shown_image(item["image"], size))] for item in inputs]
        answers = self.ask(chats, OutputFormat(regex=CAPTION_REGEX), seeds)
        results: list[dict[str, Any] | BrickError] = []
        for answer in answers:
            if isinstance(answer, GenerationError):
                results.append(BrickError(f"the model gave no answer: {answer}"))
            elif not answer.strip():
                results.append(BrickError("the model's caption is empty"))
            else:
                results.append({"caption": answer.strip()})
        return results


BACKENDS = [VLMAddPred, VLMCapPred]
