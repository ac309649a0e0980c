"""What the engines are asked: chat messages (text and an optional image) and the shape the answer must take."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image


@dataclass
class Message:
    """One chat turn. Only user turns carry an image."""

    role: str
    text: str
    image: Image.Image | None = None


Chat = list[Message]


@dataclass(frozen=True)
class OutputFormat:
    """The answer's shape, enforced by constrained decoding where the engine can.

    ``json_schema`` or ``regex`` constrains the answer; with ``think`` the answer is preceded by
    ``<think>...</think>`` of at most ``max_think_chars`` characters (no ``<`` inside).
    """

    json_schema: dict[str, Any] | None = None
    regex: str | None = None
    think: bool = False
    max_think_chars: int = 1200


class GenerationError(Exception):
    """An engine could not produce an answer for one chat (e.g. the endpoint kept failing)."""


def shown_image(image: np.ndarray, size: int) -> Image.Image:
    """The image as the Builder sees it: RGB, its longest side scaled down to ``size`` (never up)."""
    picture = Image.fromarray(image).convert("RGB")
    scale = size / max(picture.size)
    if scale < 1:
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                 Image.Resampling.BICUBIC)
    return picture


def data_uri(picture: Image.Image) -> str:
    """A PNG ``data:`` URI, the image form OpenAI-compatible servers and vLLM's chat both accept."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def openai_messages(chat: Chat) -> list[dict[str, Any]]:
    """A chat in the OpenAI message format (images as ``image_url`` data URIs)."""
    messages = []
    for message in chat:
        if message.image is None:
            messages.append({"role": message.role, "content": message.text})
            continue
        messages.append({"role": message.role, "content": [
            {"type": "image_url", "image_url": {"url": data_uri(message.image)}},
            {"type": "text", "text": message.text},
        ]})
    return messages


def hf_messages(chat: Chat) -> tuple[list[dict[str, Any]], list[Image.Image]]:
    """A chat in the transformers chat-template format, and its images in order of appearance."""
    messages, images = [], []
    for message in chat:
        if message.image is None:
            messages.append({"role": message.role, "content": [{"type": "text", "text": message.text}]})
            continue
        images.append(message.image)
        messages.append({"role": message.role, "content": [{"type": "image"}, {"type": "text", "text": message.text}]})
    return messages, images
