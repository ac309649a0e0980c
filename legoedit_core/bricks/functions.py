"""Function bricks: plain, deterministic image operations with no model behind them."""

from legoedit_core.bricks.registry import BrickRegistry
from legoedit_core.bricks.spec import BrickSpec, bbox, image, mask, number, text

_REGION = mask("mask", "apply only inside this region (whole image when absent)", required=False, nonempty=True)

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
    description="Colour adjustment: brightness, contrast and saturation factors (1 leaves a value unchanged) and "
                "colour temperature (0 leaves it; above 0 warmer, below 0 cooler).",
    inputs=(
        image(),
        number("brightness", "below 1 darkens, above 1 brightens", default=1.0, minimum=0.0, maximum=3.0),
        number("contrast", "below 1 flattens, above 1 strengthens", default=1.0, minimum=0.0, maximum=3.0),
        number("saturation", "0 is grey, above 1 is more vivid", default=1.0, minimum=0.0, maximum=3.0),
        number("temperature", "white balance: above 0 warmer (more amber), below 0 cooler (more blue)", default=0.0,
               minimum=-1.0, maximum=1.0),
        _REGION,
    ),
    outputs=(image("image", "the adjusted image"),),
    version="2",
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

SMOOTH = BrickSpec(
    name="SMOOTH",
    family="function",
    description="Edge-preserving smoothing of the image or a masked region: evens out skin, noise and fine texture "
                "while keeping edges (a bilateral filter, not a blur).",
    inputs=(image(), number("strength", "0 leaves it, 1 is strong", default=0.5, minimum=0.0, maximum=1.0), _REGION),
    outputs=(image("image", "the smoothed image"),),
    constraints=("For skin retouching: RES 'skin', then SMOOTH inside that mask.",),
)

TEXT = BrickSpec(
    name="TEXT",
    family="function",
    description="Writes one line of text onto the image at a named position (or tiled over it as a watermark), "
                "with a contrasting outline, in a font that ships with the image library.",
    inputs=(
        image(),
        text("prompt", "the words to write, exactly as they should appear"),
        text("position", "where the line goes", default="bottom",
             choices=("top", "bottom", "center", "top-left", "top-right", "bottom-left", "bottom-right", "tiled")),
        number("size", "letter height as a fraction of the image height", default=0.1, minimum=0.02, maximum=0.5),
        text("color", "the colour of the letters", default="white"),
        number("opacity", "1 is solid; a watermark is usually 0.3-0.5", default=1.0, minimum=0.05, maximum=1.0),
    ),
    outputs=(image("image", "the image with the text"),),
    constraints=("The prompt is the text itself: 'SALE 50%', not 'add the words SALE 50%'.",
                 "A long line is made smaller to fit the width."),
)

PAD = BrickSpec(
    name="PAD",
    family="function",
    description="Extends the canvas with a plain colour: a border around the image, and/or padding to a square "
                "(as marketplaces ask of product photos). Nothing of the image is cut or scaled.",
    inputs=(
        image(),
        number("border", "border width as a fraction of the longer side", default=0.0, minimum=0.0, maximum=0.5),
        text("shape", "'square' pads the shorter side to make a square", default="same", choices=("same", "square")),
        text("color", "the colour of the added canvas", default="white"),
    ),
    outputs=(image("image", "the image on the larger canvas"),),
)

SPECS = (CROP, BLUR, ADJUST, GRAYSCALE, SHARPEN, FLIP, ROTATE, SMOOTH, TEXT, PAD)


def register(registry: BrickRegistry) -> None:
    for spec in SPECS:
        registry.add_brick(spec)
