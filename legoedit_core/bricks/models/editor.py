"""EDIT, the global instruction editor: FLUX.1-Kontext and Qwen-Image-Edit through diffusers."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from legoedit_core.bricks.models.batching import Job, PipelineBackend, Prepared, resized, working_size
from legoedit_core.types import size_of


class InstructionEditor(PipelineBackend):
    """Whole-image editing from an instruction; the output is resized back to the input's size."""

    brick = "EDIT"
    multiple: ClassVar[int] = 16

    def prepare(self, item: dict[str, Any], seed: int) -> Prepared:
        image = item["image"]
        size = working_size(*size_of(image), self.multiple, int(self.options["max_area"]))
        job = Job(size, seed, {"prompt": item["prompt"], "image": resized(image, size)})
        return Prepared(job, lambda output: np.asarray(output.convert("RGB").resize(size_of(image))))

    def call(self, pipe: Any, jobs: list[Job], generators: list[Any]) -> list[Image.Image]:
        width, height = jobs[0].size
        return pipe(prompt=[j.args["prompt"] for j in jobs], image=[j.args["image"] for j in jobs], width=width,
                    height=height, generator=generators, num_inference_steps=int(self.options["steps"]),
                    **self.guidance(jobs)).images

    @abstractmethod
    def guidance(self, jobs: list[Job]) -> dict[str, Any]:
        """The pipeline-specific arguments besides prompt, image, size, generators and steps."""


class FluxKontext(InstructionEditor):
    name = "flux-kontext"
    kind = "diffusers.FluxKontextPipeline"
    sources = {"model": "a FLUX.1-Kontext diffusers pipeline"}
    defaults = {"steps": 28, "guidance": 2.5, "max_area": 1024 * 1024,
                "max_sequence_length": 512}

    def guidance(self, jobs: list[Job]) -> dict[str, Any]:
        # Kontext otherwise snaps every input to one of its preferred ~1 MP resolutions: keep our working size.
        width, height = jobs[0].size
        return {"guidance_scale": float(self.options["guidance"]), "max_area": width * height, "_auto_resize": False,
                "max_sequence_length": int(self.options["max_sequence_length"])}


class QwenImageEdit(InstructionEditor):
    name = "qwen-image-edit"
    kind = "diffusers.QwenImageEditPipeline"
    # Its Qwen2-VL processor needs torchvision in transformers 5.
    packages = ("torch", "diffusers", "torchvision")
    sources = {"model": "a Qwen-Image-Edit diffusers pipeline"}
    defaults = {"steps": 50, "true_cfg_scale": 4.0, "max_area": 1024 * 1024}

    def guidance(self, jobs: list[Job]) -> dict[str, Any]:
        return {"true_cfg_scale": float(self.options["true_cfg_scale"]), "negative_prompt": [" "] * len(jobs)}


BACKENDS = [FluxKontext, QwenImageEdit]
