"""CPU backend for RES: referring segmentation for the referents a classical method can honestly find.

The prompt's referent picks one finder: faces (Haar cascades), people (U^2-Net saliency or the HOG people detector,
refined by GrabCut), hair, clothes and skin (the person around a face, split by a skin-colour model), sky (bright,
smooth, blue or grey regions joined to the top border), text (RapidOCR's detector) and named colours (HSV ranges).
Anything else is refused with a plain message rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from legoedit_core.bricks.cpu.common import edge_radius
from legoedit_core.bricks.cpu.segment import (
    as_mask,
    cleanup,
    components_touching,
    cpu_model,
    disk,
    grabcut_in_region,
    saliency_missing,
    salient_objects,
)
from legoedit_core.bricks.spec import BrickError, PerItemBackend

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
Finder = Callable[[np.ndarray, int], np.ndarray]  # (RGB image, seed) -> boolean mask

_FILLER = {"a", "an", "the", "all", "any", "every", "each", "some", "this", "that", "these", "those", "of", "in",
           "on", "my", "his", "her", "its", "their", "our", "your", "image", "photo", "picture"}
_IRREGULAR = {"people": "person", "men": "man", "women": "woman", "children": "child", "clothes": "clothes",
              "clothing": "clothes", "gray": "grey", "violet": "purple"}


def referent_words(prompt: str) -> list[str]:
    """The prompt's content words, lower-case and singular: 'The red cars' -> ['red', 'car']."""
    words = re.findall(r"[a-z0-9]+", prompt.lower().replace("'s", ""))
    return [_singular(word) for word in words if word not in _FILLER]


def _singular(word: str) -> str:
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us")) and len(word) > 3:
        return word[:-1]
    return word


# ---------------------------------------------------------------------------------------------------- faces


def _cascade(name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise BrickError(f"OpenCV's Haar cascade {name} is missing (opencv-python-headless<5 ships it)")
    return cascade


def _detect(grey: np.ndarray, cascade: str, mirrored: bool = False) -> list[Box]:
    width = grey.shape[1]
    source = cv2.flip(grey, 1) if mirrored else grey
    min_side = max(20, min(grey.shape) // 12)
    with cpu_model(f"haar:{cascade}", lambda: _cascade(cascade), Path(cv2.data.haarcascades) / cascade) as detector:
        found = detector.detectMultiScale(source, scaleFactor=1.1, minNeighbors=5,
                                                   minSize=(min_side, min_side))
    boxes = []
    for x, y, w, h in found:
        x0 = width - (x + w) if mirrored else x
        boxes.append((int(x0), int(y), int(x0 + w), int(y + h)))
    return boxes


def face_boxes(image: np.ndarray) -> list[Box]:
    """Human faces: frontal faces, plus profiles facing either way where no frontal face was found."""
    grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    boxes = _detect(grey, "haarcascade_frontalface_default.xml")
    for box in _detect(grey, "haarcascade_profileface.xml") + _detect(grey, "haarcascade_profileface.xml", True):
        if not any(_overlap(box, other) for other in boxes):
            boxes.append(box)
    return boxes


def cat_face_boxes(image: np.ndarray) -> list[Box]:
    grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    return _detect(grey, "haarcascade_frontalcatface_extended.xml")


def _overlap(a: Box, b: Box) -> bool:
    return max(a[0], b[0]) < min(a[2], b[2]) and max(a[1], b[1]) < min(a[3], b[3])


def boxes_mask(shape: tuple[int, ...], boxes: list[Box]) -> np.ndarray:
    """Boolean mask with every box filled."""
    selected = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in boxes:
        selected[max(0, y0) : y1, max(0, x0) : x1] = True
    return selected


def find_faces(image: np.ndarray, seed: int) -> np.ndarray:
    return boxes_mask(image.shape, face_boxes(image))


def find_cat_faces(image: np.ndarray, seed: int) -> np.ndarray:
    return boxes_mask(image.shape, cat_face_boxes(image))


# ---------------------------------------------------------------------------------------------------- people


def _hog() -> cv2.HOGDescriptor:
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def hog_people_boxes(image: np.ndarray) -> list[Box]:
    """Whole standing people from OpenCV's HOG + linear SVM detector (its window is 64x128, so small images are
    enlarged first)."""
    scale = max(1.0, 400 / min(image.shape[:2]))
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if scale > 1:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    with cpu_model("hog-people", _hog) as detector:
        found, weights = detector.detectMultiScale(grey, winStride=(8, 8), padding=(8, 8), scale=1.05)
    return [tuple(int(round(v / scale)) for v in (x, y, x + w, y + h))
            for (x, y, w, h), weight in zip(found, np.ravel(weights), strict=True) if weight > 1.0]


def find_people(image: np.ndarray, seed: int) -> np.ndarray:
    return people(image, face_boxes(image), seed)


def people(image: np.ndarray, faces: list[Box], seed: int) -> np.ndarray:
    """Salient objects that contain one of ``faces``; failing that, HOG people boxes refined by GrabCut."""
    if faces and saliency_missing() is None:
        found = components_touching(salient_objects(image), _box_centres(image.shape, faces))
        if found.any():
            return found
    boxes = hog_people_boxes(image)
    if not boxes:
        return np.zeros(image.shape[:2], bool)
    return grabcut_in_region(image, boxes_mask(image.shape, boxes), seed)


def _box_centres(shape: tuple[int, ...], boxes: list[Box]) -> np.ndarray:
    return boxes_mask(shape, [_shrink(box, 3) for box in boxes])


def skin(image: np.ndarray, faces: list[Box]) -> np.ndarray:
    """Skin-coloured pixels. The classic YCrCb box (Cr 133-173, Cb 77-127) also takes brown hair, so where faces
    were found the model is narrowed to the colours of their cheeks and nose (a Gaussian in YCrCb, within 3 sigma).
    """
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    generic = cv2.inRange(ycrcb, (0, 133, 77), (255, 173, 127)) > 0
    samples = ycrcb[generic & boxes_mask(image.shape, [_shrink(face, 4) for face in faces])].astype(np.float32)
    if len(samples) < 20:
        return generic
    return within_3_sigma(ycrcb.astype(np.float32), samples, noise=4.0)  # 2 levels of noise per channel


def within_3_sigma(colours: np.ndarray, samples: np.ndarray, noise: float) -> np.ndarray:
    """Pixels of ``colours`` (float (H, W, 3)) within 3 sigma of a Gaussian fitted to ``samples`` (N, 3), whose
    covariance is widened by ``noise`` (a variance per channel) so a near-uniform sample still admits its noise."""
    offset = colours - samples.mean(axis=0)
    inverse = np.linalg.inv(np.cov(samples, rowvar=False) + noise * np.eye(3))
    return np.einsum("hwi,ij,hwj->hw", offset, inverse, offset) < 9.0


def _shrink(box: Box, fraction: int) -> Box:
    """The box with 1/``fraction`` of its size taken off each side."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) // fraction, (y1 - y0) // fraction
    return x0 + dx, y0 + dy, x1 - dx, y1 - dy


def find_hair(image: np.ndarray, seed: int) -> np.ndarray:
    """Non-skin pixels of the person in a zone around and above each face, joined to the band over the face."""
    faces = face_boxes(image)
    if not faces:
        return np.zeros(image.shape[:2], bool)
    person = people(image, faces, seed)
    zones, tops = [], []
    for x0, y0, x1, y1 in faces:
        w, h = x1 - x0, y1 - y0
        zones.append((x0 - w // 2, y0 - 2 * h // 3, x1 + w // 2, y1 - h // 3))
        tops.append((x0, y0 - h // 3, x1, y0 + h // 6))
    candidate = boxes_mask(image.shape, zones) & ~skin(image, faces) & ~boxes_mask(image.shape, _face_cores(faces))
    if person.any():
        candidate &= person
    return components_touching(cleanup(candidate, radius=1), boxes_mask(image.shape, tops))


def _face_cores(faces: list[Box]) -> list[Box]:
    """The part of each face box below the hairline: eyes, nose and mouth are not hair."""
    return [(x0 + (x1 - x0) // 8, y0 + (y1 - y0) // 4, x1 - (x1 - x0) // 8, y1) for x0, y0, x1, y1 in faces]


def find_skin(image: np.ndarray, seed: int) -> np.ndarray:
    """Skin of the people whose faces are found: skin-coloured pixels of those people (of the face boxes, grown,
    where no person outline is found). Empty without a face: skin colours alone also match wood, sand and walls."""
    faces = face_boxes(image)
    if not faces:
        return np.zeros(image.shape[:2], bool)
    person = people(image, faces, seed)
    if not person.any():
        person = boxes_mask(image.shape, [_grow(face, 2) for face in faces])
    return cleanup(skin(image, faces) & person, radius=1)


def _grow(box: Box, fraction: int) -> Box:
    """The box with 1/``fraction`` of its size added on each side."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) // fraction, (y1 - y0) // fraction
    return x0 - dx, y0 - dy, x1 + dx, y1 + dy


def find_clothes(image: np.ndarray, seed: int) -> np.ndarray:
    """The person less skin, faces and hair; the whole person less skin when no face is found.

    Nothing is cut along a straight line near the face: each face comes out as an ellipse, and hair as the pixels
    around the head whose colour matches the hair sampled above the face, so a collar beside the chin stays
    clothes and no horizontal cut line crosses the garment.
    """
    faces = face_boxes(image)
    person = people(image, faces, seed)
    clothes = person & ~skin(image, faces)
    if faces:
        clothes &= ~face_ellipses(image.shape, faces) & ~hair_coloured(image, faces, person)
        clothes[: min(y0 for _, y0, _, _ in faces)] = False  # above a face: hair, a hat
        below = np.zeros(clothes.shape, bool)
        below[max(y1 for _, _, _, y1 in faces):] = True
        clothes = components_touching(clothes, below)  # a garment reaches below the chin; a lock of hair does not
    return cleanup(clothes)


def face_ellipses(shape: tuple[int, ...], faces: list[Box]) -> np.ndarray:
    """Each face box's inscribed ellipse, a little taller, down over the chin."""
    selected = np.zeros(shape[:2], np.uint8)
    for x0, y0, x1, y1 in faces:
        centre = ((x0 + x1) // 2, (y0 + y1) // 2 + (y1 - y0) // 10)
        cv2.ellipse(selected, centre, ((x1 - x0) // 2, 3 * (y1 - y0) // 5), 0, 0, 360, 255, -1)
    return selected > 0


def hair_coloured(image: np.ndarray, faces: list[Box], person: np.ndarray) -> np.ndarray:
    """Pixels beside and above each face (down to just below the chin) within 3 sigma of the colour of the person's
    pixels in the band over the face (a Gaussian in CIELAB, lightness down-weighted because hair in shadow keeps
    its hue but not its lightness): hair, wherever it falls around the head."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(np.float32) * np.float32([0.3, 1.0, 1.0])
    found = np.zeros(image.shape[:2], bool)
    for x0, y0, x1, y1 in faces:
        w, h = x1 - x0, y1 - y0
        top = boxes_mask(image.shape, [(x0, y0 - h // 3, x1, y0 + h // 8)]) & person
        if top.sum() < 20:
            continue
        around = boxes_mask(image.shape, [(x0 - w // 2, y0 - h, x1 + w // 2, y1 + h // 4)])
        found |= within_3_sigma(lab, lab[top], noise=9.0) & around
    return found


# ---------------------------------------------------------------------------------------------------- scene


def find_sky(image: np.ndarray, seed: int) -> np.ndarray:
    """Bright, smooth pixels that are blue or neutral white/grey, in regions that touch the top border."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hue, sat, val = (hsv[:, :, i].astype(np.int16) for i in range(3))
    blue = (hue >= 90) & (hue <= 135) & (sat >= 30) & (val >= 50)  # down to dusk blue
    # Clouds and overcast are white or cool grey; warm greys are walls and studio backdrops.
    cloud = (sat <= 50) & (val >= 150) & (image[:, :, 2].astype(np.int16) >= image[:, :, 0] - 4)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gradient = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    smooth = cv2.GaussianBlur(gradient, (0, 0), 2.0) < 40
    candidate = cleanup((blue | cloud) & smooth, radius=2)
    top = np.zeros(candidate.shape, bool)
    top[0] = True
    sky = components_touching(candidate, top)
    # The smoothness test keeps the sky a few pixels off every outline (the gradient is blurred); the sky-coloured
    # pixels in that margin are sky too, or a rim of unedited sky rings the head, the roofs, the trees.
    sky |= (cv2.dilate(as_mask(sky), disk(8)) > 0) & (blue | cloud)
    return cv2.morphologyEx(as_mask(sky), cv2.MORPH_CLOSE, disk(3)) > 0


def _ocr_engine() -> Any:
    from rapidocr import RapidOCR

    return RapidOCR(params={"Global.log_level": "error"})


def _ocr_models() -> Path | None:
    """The folder of ONNX models inside the rapidocr wheel (what the runtime counts the engine at), if installed."""
    spec = find_spec("rapidocr")
    return Path(spec.submodule_search_locations[0]) / "models" if spec and spec.submodule_search_locations else None


def _ocr(image: np.ndarray) -> Any:
    """RapidOCR's result for ``image`` (the engine is loaded once per process)."""
    try:
        with cpu_model("rapidocr", _ocr_engine, _ocr_models()) as engine:
            return engine(Image.fromarray(image))
    except ImportError as error:
        raise BrickError("reading text needs the rapidocr package (with onnxruntime)") from error


def read_text(image: np.ndarray) -> list[str]:
    """The text lines RapidOCR reads in ``image``, top to bottom as it reports them."""
    return [str(line) for line in (getattr(_ocr(image), "txts", None) or ())]


def text_finder(named: list[str]) -> Finder:
    """A finder for the strokes of the text lines RapidOCR detects and reads; with ``named`` words ("the word SALE",
    "the text 'Fresh'"), only the lines that contain one of them (none at all when no line does: other text is
    never taken instead)."""

    def find(image: np.ndarray, seed: int) -> np.ndarray:
        result = _ocr(image)
        boxes = getattr(result, "boxes", None)
        lines = [str(line).lower() for line in (getattr(result, "txts", None) or ())]
        selected = np.zeros(image.shape[:2], bool)
        if boxes is None:
            return selected
        for box, line in zip(boxes, lines or [""] * len(boxes), strict=True):
            if named and not any(word in line for word in named):
                continue
            polygon = np.zeros(image.shape[:2], np.uint8)
            cv2.fillPoly(polygon, [np.round(box).astype(np.int32)], 255)
            selected |= text_strokes(image, polygon > 0)
        return selected

    return find


def text_strokes(image: np.ndarray, line: np.ndarray) -> np.ndarray:
    """The letters inside a detected text line's polygon, grown over their anti-aliased rims: the pixels whose
    colour is far from the background's (the median colour just outside the polygon), split by Otsu's threshold,
    so a fill and its outline both count. Filling strokes instead of the whole box leaves the texture between
    letters untouched."""
    ring = (cv2.dilate(as_mask(line), disk(3)) > 0) & ~line
    background = np.median(image[ring], axis=0) if ring.any() else np.median(image[line], axis=0)
    distance = np.linalg.norm(image.astype(np.float32) - background, axis=2)
    values = np.clip(distance[line], 0, 255).astype(np.uint8).reshape(-1, 1)
    threshold, _ = cv2.threshold(values, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    letters = line & (distance > max(threshold, 20.0))
    radius = max(2, round(0.05 * np.count_nonzero(line.any(axis=1))))  # 5% of the line's height
    return cv2.dilate(as_mask(letters), disk(radius)) > 0


# HSV in OpenCV's ranges (H 0-179, S and V 0-255): (low, high) pairs, several pairs where the hue wraps.
_COLOURS: dict[str, list[tuple[tuple[int, int, int], tuple[int, int, int]]]] = {
    "red": [((0, 100, 60), (8, 255, 255)), ((170, 100, 60), (179, 255, 255))],
    "orange": [((9, 120, 150), (21, 255, 255))],
    "yellow": [((22, 80, 100), (34, 255, 255))],
    "green": [((35, 60, 40), (85, 255, 255))],
    "cyan": [((86, 60, 60), (99, 255, 255))],
    "blue": [((100, 70, 40), (130, 255, 255))],
    "purple": [((131, 50, 40), (154, 255, 255))],
    "pink": [((155, 40, 90), (169, 255, 255)), ((0, 30, 170), (8, 99, 255)), ((170, 30, 170), (179, 99, 255))],
    "brown": [((5, 60, 30), (21, 255, 149))],
    "white": [((0, 0, 200), (179, 40, 255))],
    "black": [((0, 0, 0), (179, 255, 50))],
    "grey": [((0, 0, 51), (179, 40, 199))],
}


def colour_finder(colour: str, of_a_thing: bool = False) -> Finder:
    """A finder for pixels of a named colour, small specks removed.

    ``of_a_thing`` ("the red paint on the bike", "the blue car"): the prompt names *one* thing of that colour, so
    only that thing's pixels of the colour are kept (``colour_of_the_thing``); a red box on a shelf behind the bike,
    or the reddish table under a red cup, keep their colour.
    """

    def find(image: np.ndarray, seed: int) -> np.ndarray:
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        selected = np.zeros(image.shape[:2], bool)
        for low, high in _COLOURS[colour]:
            selected |= cv2.inRange(hsv, low, high) > 0
        selected = cleanup(selected, radius=1)
        if not of_a_thing or not selected.any():
            return selected
        return colour_of_the_thing(image, selected)

    return find


def colour_of_the_thing(image: np.ndarray, coloured: np.ndarray) -> np.ndarray:
    """The pixels of ``coloured`` (boolean) that belong to the one thing of that colour the prompt names.

    The thing is the salient object (a connected part of the U^2-Net mask) holding the most pixels of the colour.
    Only the colour's pixels inside it (or within ``edge_radius`` of its outline, where the matte decides) count,
    with the pixels of the thing's own shade of it (``like_colour``) joined to them; regions of the colour that
    merely touch the thing (a reddish table under a red cup) and other salient things of the same colour (a second
    cup, a box on a shelf) are left out. Without a salient object holding the colour, the largest connected region
    of the colour is the thing.
    """
    if saliency_missing() is None:
        count, parts = cv2.connectedComponents(as_mask(salient_objects(image)), connectivity=8)
        held = np.bincount(parts[coloured], minlength=count)
        held[0] = 0  # label 0 is outside every salient object
        if held.max() > 0:
            thing = as_mask(parts == int(np.argmax(held)))
            near = cv2.dilate(thing, disk(edge_radius(image.shape))) > 0
            seeds = components_touching(coloured & near, thing > 0)
            return components_touching((seeds | like_colour(image, seeds)) & near, seeds)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(as_mask(coloured), connectivity=8)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def like_colour(image: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Pixels within 3 sigma of the colour of ``seeds`` (a Gaussian in CIELAB, lightness halved as shading changes
    it most): the thing's own shade of the colour named, e.g. the folds of an orange suit in shadow, which the fixed
    HSV range for "orange" misses."""
    if seeds.sum() < 20:
        return seeds
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab).astype(np.float32) * np.float32([0.5, 1.0, 1.0])
    return within_3_sigma(lab, lab[seeds], noise=4.0)


# ---------------------------------------------------------------------------------------------------- dispatch

_PEOPLE = {"person", "man", "woman", "boy", "girl", "child", "kid", "baby", "human", "lady", "guy", "astronaut",
           "player", "worker", "pedestrian"}
_CLOTHES = {"clothes", "shirt", "tshirt", "jacket", "coat", "dress", "suit", "spacesuit", "sweater", "hoodie",
            "blouse", "outfit", "uniform", "jumper", "vest"}
_TEXT = {"text", "word", "letter", "lettering", "writing", "caption", "headline", "title", "subtitle", "inscription"}
_CATS = {"cat", "kitten", "kitty"}
_OTHER_ANIMALS = {"dog", "puppy", "horse", "bird", "cow", "sheep", "goat", "monkey", "bear", "lion", "tiger", "animal"}


_COLOUR_WORDS = {"colour", "color", "coloured", "colored", "one", "bit", "part", "area", "pixel", "tone", "shade",
                 "light", "dark", "bright", "pale"}


def choose_finder(words: list[str]) -> Finder | None:
    """The finder for a referent's words, most specific family first; None when no family matches."""
    vocabulary = set(words)
    if vocabulary & _TEXT:
        return text_finder([word for word in words if word not in _TEXT and word not in PLACES and len(word) > 1])
    if "skin" in vocabulary:
        return find_skin if not vocabulary & (_OTHER_ANIMALS | _CATS) else None
    if "face" in vocabulary:
        if vocabulary & _OTHER_ANIMALS:
            return None  # the cascades know human and cat faces only
        return find_cat_faces if vocabulary & _CATS else find_faces
    if "hair" in vocabulary:
        return find_hair
    if vocabulary & _CLOTHES:
        return find_clothes
    if "sky" in vocabulary:
        return find_sky
    if vocabulary & _PEOPLE:
        return find_people
    colours = [word for word in words if word in _COLOURS]
    if not colours:
        return None
    things = [word for word in words if word not in _COLOURS and word not in PLACES and word not in _COLOUR_WORDS]
    return colour_finder(colours[0], of_a_thing=bool(things))


# Where in the frame a referent is ("the person on the left", "the text at the bottom right"): the words, and the
# half of the frame each keeps, as (axis, side): axis 1 is x, 0 is y; side 0 the lower half of that axis.
PLACES = {"left": (1, 0), "right": (1, 1), "top": (0, 0), "upper": (0, 0), "bottom": (0, 1), "lower": (0, 1)}
# Relations a classical finder cannot honour: the prompt is refused rather than read without them.
_RELATIONS = {"behind", "front", "next", "near", "beside", "between", "middle", "centre", "center", "biggest",
              "smallest", "largest", "first", "second", "third", "tallest", "closest", "farthest", "holding",
              "wearing", "under", "above", "below", "background", "foreground", "distance", "back"}


def in_place(selected: np.ndarray, words: list[str]) -> np.ndarray:
    """The connected parts of ``selected`` whose centre lies in the part of the frame ``words`` name ("left",
    "bottom right" ...); all of ``selected`` when they name none."""
    halves = [PLACES[word] for word in words if word in PLACES]
    if not halves:
        return selected
    count, labels, _, centres = cv2.connectedComponentsWithStats(as_mask(selected), connectivity=8)
    keep = np.zeros(count, bool)
    size = selected.shape
    for label in range(1, count):
        centre = (centres[label][1], centres[label][0])  # (y, x)
        keep[label] = all((centre[axis] >= size[axis] / 2) == bool(side) for axis, side in halves)
    return keep[labels]


class ClassicalReferring(PerItemBackend):
    brick, name = "RES", "classical"
    version = "4"  # a named thing's colour: only inside the salient object holding most of it (3: any region touching)

    @classmethod
    def understands(cls, prompt: str) -> bool:
        words = referent_words(prompt)
        return choose_finder(words) is not None and not set(words) & _RELATIONS

    def describe_needs(self) -> str:
        return ("OpenCV Haar/HOG detectors and GrabCut, U^2-Net small saliency, RapidOCR; finds faces, people, skin, "
                "hair, clothes, sky, text and named colours only, optionally by side of the frame (left, top right)")

    def run_one(self, inputs: dict[str, Any], seed: int) -> dict[str, Any]:
        referent = inputs["prompt"].strip()
        if not referent:
            raise BrickError("the prompt is empty: name what to segment")
        words = referent_words(referent)
        finder = choose_finder(words)
        if finder is None or set(words) & _RELATIONS:
            raise BrickError(f"no CPU backend can find '{referent}'")
        return {"mask": as_mask(in_place(finder(inputs["image"], seed), words))}


BACKENDS = (ClassicalReferring,)
