"""Function bricks: plain, deterministic image operations with no model behind them."""

from legoedit_core.bricks.registry import BrickRegistry
from legoedit_core.bricks.spec import BrickSpec, bbox, image, mask, number, text

_REGION = mask("mask", "apply only inside this region (whole image when absent)", required=False)

CROP = BrickSpec(
    name="CROP",
    family="function",
    description="Crops the image to a box.",
    inputs=(image(), bbox("bbox", "[x0, y0, x1, y1]; use BBOX to get one from a mask")),
    outputs=(image("image", "the cropped image"),),
)

BLUR = BrickSpec(
    name="BLUR",
    family="function",
    description="Gaussian blur of the image or of a masked region (e.g. to hide faces or plates).",
    inputs=(image(), number("radius", "blur radius in pixels", default=8, minimum=0.5, maximum=100), _REGION),
    outputs=(image("image", "the blurred image"),),
)

ADJUST = BrickSpec(
    name="ADJUST",
    family="function",
    description="Colour adjustment: brightness, contrast and saturation factors (1 leaves a value unchanged).",
    inputs=(
        image(),
        number("brightness", "below 1 darkens, above 1 brightens", default=1.0, minimum=0.0, maximum=3.0),
        number("contrast", "below 1 flattens, above 1 strengthens", default=1.0, minimum=0.0, maximum=3.0),
        number("saturation", "0 is grey, above 1 is more vivid", default=1.0, minimum=0.0, maximum=3.0),
        _REGION,
    ),
    outputs=(image("image", "the adjusted image"),),
)

GRAYSCALE = BrickSpec(
    name="GRAYSCALE",
    family="function",
    description="Black and white: removes colour from the image or a masked region.",
    inputs=(image(), _REGION),
    outputs=(image("image", "the grey image, still with three channels"),),
)

SHARPEN = BrickSpec(
    name="SHARPEN",
    family="function",
    description="Unsharp-mask sharpening of the image or a masked region.",
    inputs=(image(), number("amount", "strength of the sharpening", default=1.0, minimum=0.0, maximum=5.0), _REGION),
    outputs=(image("image", "the sharpened image"),),
)

FLIP = BrickSpec(
    name="FLIP",
    family="function",
    description="Mirrors the image horizontally (left-right) or vertically (upside down).",
    inputs=(
        image(),
        text("direction", "which way to mirror", default="horizontal", choices=("horizontal", "vertical")),
    ),
    outputs=(image("image", "the mirrored image"),),
)

ROTATE = BrickSpec(
    name="ROTATE",
    family="function",
    description="Rotates the image counter-clockwise by an angle in degrees, enlarging the canvas to fit.",
    inputs=(image(), number("angle", "degrees, counter-clockwise", minimum=-360, maximum=360)),
    outputs=(image("image", "the rotated image"),),
)

SPECS = (CROP, BLUR, ADJUST, GRAYSCALE, SHARPEN, FLIP, ROTATE)


def register(registry: BrickRegistry) -> None:
    for spec in SPECS:
        registry.add_brick(spec)
