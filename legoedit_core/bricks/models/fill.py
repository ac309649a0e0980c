"""Mask-conditioned generation bricks on FLUX.1-Fill and on Stable Diffusion inpainting.

Each brick is a *recipe* over one inpainting pipeline: which region is regenerated, with what prompt, and
whether it uses the in-context diptych (the source on the left half, the right half regenerated from it, then
cropped back). A per-brick LoRA (``lora`` setting) replaces the recipe's prompt engineering: with an adapter the
brick's own prompt goes to the model as is, on the plain masked image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from PIL import Image

from legoedit_core.bricks.cpu.common import blend_in_mask, require_nonempty
from legoedit_core.bricks.models.batching import Job, PipelineBackend, Prepared, resized, working_size
from legoedit_core.types import size_of

Region = Literal["mask", "mask_or_all", "all", "outside"]
DIPTYCH = "A diptych with two side-by-side images of the same scene. On the right, the same scene {change}."


@dataclass(frozen=True)
class Recipe:
    """How a brick uses an inpainting model. ``prompt`` is a template over the brick's ``prompt`` input."""

    prompt: str
    region: Region = "mask"
    diptych: bool = False


RECIPES: dict[str, Recipe] = {
    "FASTINPAINT": Recipe("{removal_prompt}"),
    "INPAINT": Recipe("{removal_prompt}"),
    "FILL": Recipe("{prompt}"),
    "RCM": Recipe(DIPTYCH.format(change="but the marked part is recoloured {prompt}"), diptych=True),
    "STYLE": Recipe(DIPTYCH.format(change="rendered as {prompt}"), region="mask_or_all", diptych=True),
    "ENV": Recipe(DIPTYCH.format(change="changed to {prompt}"), region="all", diptych=True),
    "POSE": Recipe(DIPTYCH.format(change="but the subject is {prompt}"), diptych=True),
    "CBG": Recipe("{prompt}", region="outside"),
}
REMOVAL_PROMPT = "empty background, nothing there, seamless continuation of the surroundings"


class MaskedGeneration(PipelineBackend):
    """A brick run as masked generation on an inpainting pipeline ``kind``, following the brick's ``recipe``."""

    setting_keys = PipelineBackend.setting_keys | {"removal_prompt"}
    multiple: ClassVar[int]
    call_options: ClassVar[tuple[str, ...]] = ()
    recipe: ClassVar[Recipe]

    def call(self, pipe: Any, jobs: list[Job], generators: list[Any]) -> list[Image.Image]:
        """One pipeline call for jobs of one size group."""
        width, height = jobs[0].size
        extra = {key: self.options[key] for key in self.call_options}
        return pipe(prompt=[j.args["prompt"] for j in jobs], image=[j.args["image"] for j in jobs],
                    mask_image=[j.args["mask"] for j in jobs], width=width, height=height, generator=generators,
                    num_inference_steps=int(self.options["steps"]), guidance_scale=float(self.options["guidance"]),
                    **dict(jobs[0].shared), **extra).images

    def prepare(self, item: dict[str, Any], seed: int) -> Prepared:
        """The pipeline job for one item, following the recipe (or the plain masked image under a LoRA)."""
        image = item["image"]
        region = region_mask(self.recipe.region, item.get("mask"), image)
        template = "{prompt}" if self.options.get("lora") and "prompt" in item else self.recipe.prompt
        prompt = template.format(prompt=item.get("prompt", ""),
                               removal_prompt=self.options.get("removal_prompt", REMOVAL_PROMPT))
        shared = (("strength", float(item["strength"])),) if "strength" in item else ()
        max_area = int(self.options["max_area"])
        if self.recipe.diptych and not self.options.get("lora"):
            return _diptych_job(image, region, prompt, seed, shared, self.multiple, max_area)
        return _masked_job(image, region, prompt, seed, shared, self.multiple, max_area)


def region_mask(region: Region, mask: np.ndarray | None, image: np.ndarray) -> np.ndarray:
    """The 0/255 mask of pixels to regenerate."""
    everything = np.full(image.shape[:2], 255, np.uint8)
    if region == "all" or (region == "mask_or_all" and mask is None):
        return everything
    assert mask is not None
    require_nonempty(mask, "foreground mask" if region == "outside" else "mask")
    if region == "outside":
        return everything - np.where(mask > 127, 255, 0).astype(np.uint8)
    return mask


def _masked_job(image: np.ndarray, region: np.ndarray, prompt: str, seed: int,
                shared: tuple[tuple[str, Any], ...], multiple: int, max_area: int) -> Prepared:
    size = working_size(*size_of(image), multiple, max_area)
    job = Job(size, seed, {"prompt": prompt, "image": resized(image, size), "mask": resized(region, size)}, shared)
    return Prepared(job, lambda output: _finish(output, image, region))


def _diptych_job(image: np.ndarray, region: np.ndarray, prompt: str, seed: int,
                 shared: tuple[tuple[str, Any], ...], multiple: int, max_area: int) -> Prepared:
    half = working_size(*size_of(image), multiple, max_area // 2)
    canvas = Image.new("RGB", (2 * half[0], half[1]))
    canvas.paste(resized(image, half), (0, 0))
    canvas.paste(resized(image, half), (half[0], 0))
    mask = Image.new("L", canvas.size, 0)
    mask.paste(resized(region, half), (half[0], 0))
    job = Job(canvas.size, seed, {"prompt": prompt, "image": canvas, "mask": mask}, shared)
    return Prepared(job, lambda output: _finish(output.crop((half[0], 0, 2 * half[0], half[1])), image, region))


def _finish(output: Image.Image, original: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Back to the original size; pixels outside the region stay exactly the original."""
    generated = np.asarray(output.convert("RGB").resize(size_of(original), Image.Resampling.LANCZOS))
    return blend_in_mask(original, generated, None if region.all() else region)


class FluxFill(MaskedGeneration):
    name = "flux-fill"
    kind = "diffusers.FluxFillPipeline"
    multiple = 16  # VAE factor 8 x 2x2 latent packing
    call_options = ("max_sequence_length",)
    sources = {"model": "a FLUX.1-Fill diffusers pipeline"}
    defaults = {"steps": 28, "guidance": 30.0, "max_area": 1024 * 1024,
                "max_sequence_length": 512}


class SDInpaint(MaskedGeneration):
    name = "sd-inpaint"
    kind = "diffusers.StableDiffusionInpaintPipeline"
    multiple = 8
    sources = {"model": "a Stable Diffusion inpainting pipeline"}
    cuda_dtype = "float16"
    defaults = {"steps": 30, "guidance": 7.5, "max_area": 512 * 512}


def _for_brick(family: type[MaskedGeneration], brick: str) -> type[MaskedGeneration]:
    name = f"{family.__name__}{brick.title().replace('-', '')}"
    return type(name, (family,), {"brick": brick, "recipe": RECIPES[brick], "__module__": __name__})


FLUX_BRICKS = ("INPAINT", "FILL", "RCM", "STYLE", "ENV", "POSE", "CBG")
SD_BRICKS = ("FASTINPAINT", "INPAINT", "FILL", "CBG")
BACKENDS = [_for_brick(FluxFill, b) for b in FLUX_BRICKS] + [_for_brick(SDInpaint, b) for b in SD_BRICKS]
