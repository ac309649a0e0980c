"""Settings of input confinement: which roots and schemes a catalogue row may reference, and how many bytes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MAX_IMAGE_BYTES = 64 * 1024 * 1024


class InputSettings(BaseModel):
    """What a row's ``image`` / ``mask`` may reference beyond the dataset's own root (see ``data/inputs.py``)."""

    model_config = ConfigDict(extra="forbid")

    extra_roots: list[str] = Field(default_factory=list, description="other folders, bucket prefixes or URL "
                                   "prefixes that rows may reference")
    schemes: list[str] = Field(default_factory=list, description="schemes allowed anywhere, e.g. https")
    private_hosts: bool = Field(False, description="allow URLs whose host is a loopback or private address")
    max_image_bytes: int = Field(DEFAULT_MAX_IMAGE_BYTES, ge=1, description="bytes read at most per image or mask")
    url_seconds: float = Field(60.0, gt=0, description="seconds an image or mask read from a URL may take in all "
                               "(redirects included), however slowly the server sends")
