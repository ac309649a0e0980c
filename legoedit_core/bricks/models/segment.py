"""Perception bricks on transformers: RES (Grounding DINO + SAM, or CLIPSeg), MASK-SEG (SAM), SOS (a semantic
segmenter whose non-background classes are the foreground).

Each backend runs its items through the model in chunks of ``max_batch`` (out of memory is the executor's to
halve); they are deterministic, so the seeds are unused. Every model comes from the model runtime, without remote
code, and is held exclusively while it runs (processors are shared).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np
from PIL import Image

from legoedit_core.bricks.models.base import ModelBackend
from legoedit_core.bricks.models.batching import in_chunks
from legoedit_core.bricks.spec import BrickError
from legoedit_core.runtime.loading import on_model
from legoedit_core.types import BBox, binarize, mask_to_bbox, size_of

Result = dict[str, Any] | BrickError


class TransformersBackend(ModelBackend):
    """A perception backend: ``predict`` a chunk of items at once."""

    packages = ("torch", "transformers")
    cuda_dtype = "float32"  # detection thresholds and mask logits are tuned in float32

    def run_batch(self, inputs: list[dict[str, Any]], seeds: list[int]) -> list[Result]:
        import torch

        with torch.inference_mode():
            return in_chunks(inputs, self.predict, self.options.get("max_batch"))

    @abstractmethod
    def predict(self, items: list[dict[str, Any]]) -> list[Result]:
        """One result per item of a chunk."""


def _pictures(items: list[dict[str, Any]]) -> list[Image.Image]:
    return [Image.fromarray(item["image"]) for item in items]


class ClipSeg(TransformersBackend):
    """RES, the light way: CLIPSeg's text-conditioned heat map, thresholded."""

    brick, name = "RES", "clipseg"
    sources = {"model": "a CLIPSeg checkpoint"}
    defaults = {"threshold": 0.4}

    def predict(self, items: list[dict[str, Any]]) -> list[Result]:
        import torch

        processor = self.shared("transformers.AutoProcessor")
        batch = processor(text=[item["prompt"] for item in items], images=_pictures(items), padding=True,
                          return_tensors="pt")
        with self.use("transformers.CLIPSegForImageSegmentation") as model:
            logits = model(**on_model(batch, model)).logits
        probabilities = torch.sigmoid(logits.float().reshape(len(items), *logits.shape[-2:])).cpu().numpy()
        threshold = float(self.options["threshold"])
        return [{"mask": _resize_mask(p > threshold, size_of(item["image"]))} for p, item in zip(probabilities, items,
                                                                                                   strict=True)]


class SamMasks(TransformersBackend):
    """Shared SAM step: image embeddings in one batch, then each item's boxes decoded into one mask."""

    def sam_masks(self, items: list[dict[str, Any]], boxes: list[list[BBox]]) -> list[np.ndarray]:
        processor = self.shared("transformers.AutoProcessor", "segmenter")
        with self.use("transformers.SamModel", "segmenter") as sam:
            return self._decode(sam, processor, items, boxes)

    def _decode(self, sam: Any, processor: Any, items: list[dict[str, Any]], boxes: list[list[BBox]]
                ) -> list[np.ndarray]:
        pixels = processor(images=_pictures(items), return_tensors="pt")
        embeddings = sam.get_image_embeddings(on_model(pixels, sam)["pixel_values"])
        masks = []
        for index, (item, item_boxes) in enumerate(zip(items, boxes, strict=True)):
            width, height = size_of(item["image"])
            if not item_boxes:
                masks.append(np.zeros((height, width), np.uint8))
                continue
            prompt = processor(images=_pictures([item]), input_boxes=[[list(b) for b in item_boxes]],
                               return_tensors="pt")
            decoded = sam(image_embeddings=embeddings[index : index + 1], multimask_output=False,
                          input_boxes=prompt["input_boxes"].to(sam.device, sam.dtype))
            full = processor.post_process_masks(decoded.pred_masks.float().cpu(), prompt["original_sizes"],
                                                prompt["reshaped_input_sizes"])[0]
            masks.append(np.where(full.numpy().any(axis=(0, 1)), 255, 0).astype(np.uint8))
        return masks


class GroundedSam(SamMasks):
    """RES: Grounding DINO finds boxes for the phrase, SAM turns them into one mask (empty when none match)."""

    brick, name = "RES", "grounded-sam"
    sources = {"detector": "a Grounding DINO checkpoint", "segmenter": "a SAM checkpoint"}
    defaults = {"box_threshold": 0.3, "text_threshold": 0.25}

    def predict(self, items: list[dict[str, Any]]) -> list[Result]:
        processor = self.shared("transformers.AutoProcessor", "detector")
        # Grounding DINO expects lower-case phrases, each ended by a period.
        texts = [item["prompt"].strip().lower().rstrip(".") + "." for item in items]
        batch = processor(images=_pictures(items), text=texts, padding=True, return_tensors="pt")
        with self.use("transformers.GroundingDinoForObjectDetection", "detector") as detector:
            outputs = detector(**on_model(batch, detector))
        detections = processor.post_process_grounded_object_detection(
            outputs, batch["input_ids"], threshold=float(self.options["box_threshold"]),
            text_threshold=float(self.options["text_threshold"]),
            target_sizes=[size_of(item["image"])[::-1] for item in items])
        boxes = [[tuple(round(v) for v in box) for box in found["boxes"].tolist()] for found in detections]
        return [{"mask": mask} for mask in self.sam_masks(items, boxes)]


class SamInRegion(SamMasks):
    """MASK-SEG: SAM prompted with the rough region's box, kept inside the rough region."""

    brick, name = "MASK-SEG", "sam"
    sources = {"segmenter": "a SAM checkpoint"}

    def predict(self, items: list[dict[str, Any]]) -> list[Result]:
        results: list[Result | None] = [None] * len(items)
        usable = []
        for index, item in enumerate(items):
            box = mask_to_bbox(item["mask"] > 127)
            if box is None:
                results[index] = BrickError("the rough region mask is empty")
            else:
                usable.append((index, box))
        masks = self.sam_masks([items[i] for i, _ in usable], [[box] for _, box in usable])
        for (index, box), mask in zip(usable, masks, strict=True):
            x0, y0, x1, y1 = box
            inside = np.zeros_like(mask)
            inside[y0:y1, x0:x1] = mask[y0:y1, x0:x1]
            results[index] = {"mask": inside}
        return results  # type: ignore[return-value]


class SemanticSalient(TransformersBackend):
    """SOS: a semantic segmentation model; every pixel not of a ``background_labels`` class is foreground."""

    brick, name = "SOS", "semantic"
    sources = {"model": "a semantic segmentation checkpoint (e.g. SegFormer)"}
    defaults = {"background_labels": ["background"]}

    def predict(self, items: list[dict[str, Any]]) -> list[Result]:
        processor = self.shared("transformers.AutoImageProcessor")
        batch = processor(images=_pictures(items), return_tensors="pt")
        with self.use("transformers.AutoModelForSemanticSegmentation") as model:
            outputs = model(**on_model(batch, model))
            id2label = model.config.id2label
        outputs.logits = outputs.logits.float()
        maps = processor.post_process_semantic_segmentation(
            outputs, target_sizes=[size_of(item["image"])[::-1] for item in items])
        background_names = {label.lower() for label in self.options["background_labels"]}
        background = [int(i) for i, label in id2label.items() if label.lower() in background_names]
        return [{"mask": np.where(np.isin(m.cpu().numpy(), background), 0, 255).astype(np.uint8)} for m in maps]


def _resize_mask(selected: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    picture = Image.fromarray(np.where(selected, 255, 0).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR)
    return binarize(np.asarray(picture))


BACKENDS = [GroundedSam, ClipSeg, SamInRegion, SemanticSalient]
