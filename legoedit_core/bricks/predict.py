"""Predict bricks: they look at an image and return where something is (masks, boxes) or what it shows (text)."""

from legoedit_core.bricks.registry import BrickRegistry
from legoedit_core.bricks.spec import BrickSpec, bbox, image, mask, text

RES = BrickSpec(
    name="RES",
    family="predict",
    description="Referring segmentation: a mask of every region in the image that matches a short noun phrase.",
    inputs=(image(), text("prompt", "what to segment, a short noun phrase such as 'dog' or 'the red car'")),
    outputs=(mask("mask", "the matching regions; the item fails when nothing matches", nonempty=True),),
    constraints=(
        "The prompt names a thing, never an action: 'dog', not 'remove the dog'.",
        "Use it to localise an edit before INPAINT, FILL, RCM, BLUR or CBG.",
    ),
)

SOS = BrickSpec(
    name="SOS",
    family="predict",
    description="Salient object segmentation: a mask of the main foreground object(s) of the image.",
    inputs=(image(),),
    outputs=(mask("mask", "the salient foreground; the item fails when there is none", nonempty=True),),
    constraints=("Use it for 'the subject', 'the product' or 'the foreground' when no object is named.",),
)

MASK_SEG = BrickSpec(
    name="MASK-SEG",
    family="predict",
    description="Segments the object inside a rough user mask or box, returning its exact outline.",
    inputs=(image(), mask("mask", "a rough region around the object (e.g. @input.mask)")),
    outputs=(mask("mask", "the object's precise mask, inside the rough region", nonempty=True),),
    constraints=("Needs a rough region: the user's mask or a BBOX mask.",),
)

ADD_PRED = BrickSpec(
    name="ADD-PRED",
    family="predict",
    description="Predicts where a new object would naturally go in the image, as a mask to FILL into.",
    inputs=(image(), text("prompt", "the object to add, e.g. 'a cat on the sofa'")),
    outputs=(mask("mask", "the region where the object should be generated", nonempty=True),),
    constraints=("Follow it with FILL using the same prompt.",),
)

CAP_PRED = BrickSpec(
    name="CAP-PRED",
    family="predict",
    description="Captions the image (or what should fill a region), for prompting FILL when outpainting.",
    inputs=(image(), text("prompt", "what the caption should focus on", default="")),
    outputs=(text("caption", "a one-sentence description"),),
)

BBOX = BrickSpec(
    name="BBOX",
    family="predict",
    description="The bounding box of a mask, both as a box and as a filled rectangular mask.",
    inputs=(mask("mask", nonempty=True),),
    outputs=(bbox("bbox", "[x0, y0, x1, y1] in pixels"), mask("mask", "the box as a filled mask")),
    constraints=("Fails on an empty mask.",),
)

INVERSE = BrickSpec(
    name="INVERSE",
    family="predict",
    description="Inverts a mask: selected becomes unselected and the other way round.",
    inputs=(mask("mask"),),
    outputs=(mask("mask", "the complement"),),
    constraints=("Use it to select 'everything except' an object, e.g. the background around a person.",),
)

UNION = BrickSpec(
    name="UNION",
    family="predict",
    description="Combines two masks of the same size into one that selects both regions.",
    inputs=(mask("mask"), mask("other", "the second mask")),
    outputs=(mask("mask", "pixels selected in either mask"),),
    constraints=("Use it to edit two objects with one call, e.g. remove both the cat and the dog.",),
)

SPECS = (RES, SOS, MASK_SEG, ADD_PRED, CAP_PRED, BBOX, INVERSE, UNION)


def register(registry: BrickRegistry) -> None:
    for spec in SPECS:
        registry.add_brick(spec)
