"""Edit bricks: they return a new image, changed inside a mask or as a whole."""

from legoedit_core.bricks.registry import BrickRegistry
from legoedit_core.bricks.spec import BrickSpec, image, mask, number, text

FASTINPAINT = BrickSpec(
    name="FASTINPAINT",
    family="edit",
    description="Fast object removal: fills the masked region from its surroundings. Coarse, but quick.",
    inputs=(image(), mask("mask", "the region to erase", nonempty=True)),
    outputs=(image("image", "the image with the region filled"),),
    constraints=("Good as a first pass before INPAINT, or alone for small regions.",),
)

INPAINT = BrickSpec(
    name="INPAINT",
    family="edit",
    description="Removes what is inside the mask and fills the hole with plausible background.",
    inputs=(
        image(),
        mask("mask", "the region to erase; slightly larger than the object is best", nonempty=True),
        number("strength", "how much of the masked region is regenerated", default=1.0, minimum=0.05, maximum=1.0),
    ),
    outputs=(image("image", "the image with the object removed"),),
    constraints=(
        "For removal only: to put something new in a region, use FILL.",
        "Feed it FASTINPAINT's output with strength below 1 for the two-stage remove.",
    ),
)

FILL = BrickSpec(
    name="FILL",
    family="edit",
    description="Generates new content described by the prompt inside the mask (add or replace an object).",
    inputs=(image(), mask("mask", "where to generate", nonempty=True),
            text("prompt", "what should appear in the region")),
    outputs=(image("image", "the image with the region regenerated"),),
    constraints=("To swap X for Y: RES on X, then FILL with Y.",),
)

RCM = BrickSpec(
    name="RCM",
    family="edit",
    description="Recolours (or re-materials) the masked region, keeping its shading and texture.",
    inputs=(
        image(),
        mask("mask", "the region to recolour", nonempty=True),
        text("prompt", "the target colour or material, e.g. 'red'"),
    ),
    outputs=(image("image", "the recoloured image"),),
    constraints=("The prompt is a colour or material only: 'orange', not 'make the sky orange'.",),
)

ENV = BrickSpec(
    name="ENV",
    family="edit",
    description="Changes the environment of the whole scene: weather, season or time of day.",
    inputs=(image(), text("prompt", "the target condition, e.g. 'snowy winter' or 'sunset'")),
    outputs=(image("image", "the scene under the new condition"),),
)

POSE = BrickSpec(
    name="POSE",
    family="edit",
    description="Changes the pose or action of a person or animal in the masked region.",
    inputs=(image(), mask("mask", "the subject", nonempty=True),
            text("prompt", "the target pose, e.g. 'raising both arms'")),
    outputs=(image("image", "the image with the subject re-posed"),),
)

STYLE = BrickSpec(
    name="STYLE",
    family="edit",
    description="Renders the image (or the masked region) in an artistic style.",
    inputs=(
        image(),
        text("prompt", "the style, e.g. 'pencil sketch', 'cartoon', 'watercolor', 'oil painting'"),
        mask("mask", "restrict the style to this region", required=False, nonempty=True),
    ),
    outputs=(image("image", "the stylised image"),),
)

CBG = BrickSpec(
    name="CBG",
    family="edit",
    description="Replaces the background behind a foreground mask, keeping the foreground untouched.",
    inputs=(
        image(),
        mask("mask", "the foreground to keep (e.g. from SOS or RES)", nonempty=True),
        text("prompt", "the new background: a colour, 'blur', 'transparent' or a scene description"),
    ),
    outputs=(image("image", "the foreground over the new background"),),
    constraints=("The mask is what stays; everything outside it is replaced.",),
)

COMPOSE = BrickSpec(
    name="COMPOSE",
    family="edit",
    description="Pastes an overlay image into the base image, fitted to a mask's bounding box and cut by the mask.",
    inputs=(image("image", "the base image"), image("overlay", "the image to paste"),
            mask("mask", "where to paste", nonempty=True)),
    outputs=(image("image", "the composite"),),
)

RESIZE = BrickSpec(
    name="RESIZE",
    family="edit",
    description="Resizes the image. Give a width, a height, or both; a missing side keeps the aspect ratio.",
    inputs=(
        image(),
        number("width", "target width in pixels, 0 to follow the height", default=0, minimum=0, maximum=8192),
        number("height", "target height in pixels, 0 to follow the width", default=0, minimum=0, maximum=8192),
    ),
    outputs=(image("image", "the resized image"),),
    constraints=("At least one of width and height must be above 0.",),
)

EDIT = BrickSpec(
    name="EDIT",
    family="edit",
    description="Global instruction editor: applies a natural-language edit to the whole image in one step.",
    inputs=(image(), text("prompt", "the edit instruction, or several joined with '; '")),
    outputs=(image("image", "the edited image"),),
    constraints=("Use it when no mask-based brick fits, or for edits that touch the whole scene.",),
)

SPECS = (FASTINPAINT, INPAINT, FILL, RCM, ENV, POSE, STYLE, CBG, COMPOSE, RESIZE, EDIT)


def register(registry: BrickRegistry) -> None:
    for spec in SPECS:
        registry.add_brick(spec)
