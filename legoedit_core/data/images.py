"""Image codec shared by every layer: untrusted bytes in, the ``Image`` / ``Mask`` conventions of ``types.py`` out.

Decoding is defensive because catalogue files are untrusted:

- the pixel count is read from the header and checked against ``max_pixels`` before any pixel is decoded
  (``imagesize`` first, then Pillow's lazily-opened header), so a decompression bomb costs nothing;
- only common raster formats are opened (no EPS, which would run Ghostscript);
- truncated files are errors, never grey-filled images (Pillow's ``LOAD_TRUNCATED_IMAGES`` is left alone);
- every failure is an ``ImageDecodeError`` with a plain message.

Pixels are normalised to 8-bit RGB: EXIF orientation applied, transparency composited on a background (white by
default), 16-bit and 32-bit greys scaled rather than clipped, CMYK converted through its embedded ICC profile
when there is one. Multi-frame files (GIF, APNG, TIFF) give their first frame.
"""

from __future__ import annotations

import io
import os
from functools import cache
from typing import Any

import fsspec
import imagesize
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from legoedit_core.types import binarize

try:
    from PIL import ImageCms
except ImportError:  # Pillow built without LittleCMS: CMYK falls back to Pillow's plain conversion
    ImageCms = None

DEFAULT_MAX_PIXELS = 8192 * 8192
SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "PPM", "AVIF")
WHITE = (255, 255, 255)

# Exceptions Pillow raises for malformed or cut-short data, while parsing headers or decoding pixels.
_CORRUPT = (OSError, SyntaxError, ValueError, EOFError, IndexError)


class ImageDecodeError(ValueError):
    """Bytes that are not a usable image: empty, unknown format, truncated, too large, or the wrong size."""


def decode_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, background: tuple[int, int, int] = WHITE
) -> np.ndarray:
    """Decode image bytes into an RGB uint8 array (H, W, 3).

    Transparent pixels are composited on ``background`` (white unless told otherwise).
    """
    return _to_rgb(_open(data, max_pixels), background)


def decode_mask(
    data: bytes, size: tuple[int, int] | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode mask bytes into a 0/255 uint8 array (H, W).

    The alpha channel is the mask when the file has one that is not fully opaque, otherwise the luminance;
    both are thresholded at 127. ``size`` is the (width, height) the mask must have, usually its image's.
    """
    picture = _open(data, max_pixels)
    if size is not None and picture.size != tuple(size):
        raise ImageDecodeError(f"mask is {_dims(picture.size)} but the image is {_dims(size)}")
    alpha = _alpha(picture)
    if alpha is not None and alpha.min() < 255:
        return binarize(alpha)
    return binarize(np.array(Image.fromarray(_to_rgb(picture, WHITE)).convert("L")))


def encode(array: np.ndarray, format: str, **params: Any) -> bytes:
    """Encode an Image (H, W, 3) or Mask (H, W) uint8 array with any Pillow writer."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"expected a uint8 image (H, W, 3) or mask (H, W), got {array.shape} {array.dtype}")
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format, **params)
    return buffer.getvalue()


def encode_png(array: np.ndarray) -> bytes:
    """Lossless PNG bytes of an Image or Mask array."""
    return encode(array, "PNG")


def encode_jpeg(array: np.ndarray, quality: int = 92) -> bytes:
    """JPEG bytes of an Image or Mask array."""
    return encode(array, "JPEG", quality=quality)


def read_image(
    path_or_url: str | os.PathLike, fs: fsspec.AbstractFileSystem | None = None, **decode_options: Any
) -> np.ndarray:
    """Read and decode an image from a local path or any fsspec URL (``s3://``, ``memory://``, ...)."""
    return _read(decode_image, path_or_url, fs, **decode_options)


def read_mask(
    path_or_url: str | os.PathLike, fs: fsspec.AbstractFileSystem | None = None, **decode_options: Any
) -> np.ndarray:
    """Read and decode a mask; ``size=(width, height)`` checks it against its image."""
    return _read(decode_mask, path_or_url, fs, **decode_options)


def write_image(array: np.ndarray, path: str | os.PathLike, fs: fsspec.AbstractFileSystem | None = None) -> None:
    """Write an Image or Mask array to a local path or fsspec URL, the format chosen from the file suffix."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    format_name = Image.registered_extensions().get(suffix)
    if format_name not in SUPPORTED_FORMATS:
        known = ", ".join(sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in SUPPORTED_FORMATS))
        raise ValueError(f"cannot choose an image format from the suffix of {os.fspath(path)!r}: use one of {known}")
    data = encode_jpeg(array) if format_name == "JPEG" else encode(array, format_name)
    with _open_file(path, "wb", fs) as handle:
        handle.write(data)


def output_name(name: str, index: int) -> str:
    """The file name of a workflow's ``index``-th output image: ``name`` itself for the first, then
    ``stem-2.ext``, ``stem-3.ext``, ...: one naming rule for every writer of several outputs."""
    if index == 0:
        return name
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}-{index + 1}.{suffix}" if dot else f"{name}-{index + 1}"


def thumbnail(array: np.ndarray, max_side: int = 256) -> np.ndarray:
    """A copy no larger than ``max_side`` on either side, aspect ratio kept; masks stay 0/255."""
    picture = Image.fromarray(np.asarray(array))
    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    small = np.array(picture)
    return binarize(small) if small.ndim == 2 else small


def _read(decoder, path_or_url, fs, **decode_options) -> np.ndarray:
    with _open_file(path_or_url, "rb", fs) as handle:
        data = handle.read()
    try:
        return decoder(data, **decode_options)
    except ImageDecodeError as error:
        raise ImageDecodeError(f"{os.fspath(path_or_url)}: {error}") from error


def _open_file(path_or_url, mode: str, fs: fsspec.AbstractFileSystem | None):
    return fs.open(os.fspath(path_or_url), mode) if fs is not None else fsspec.open(os.fspath(path_or_url), mode)


def image_size(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int] | None:
    """(width, height) read from an image's header, without decoding a pixel, and checked against ``max_pixels``
    (``ImageDecodeError`` above it: the one per-image limit checked before anything is admitted or decoded); None
    when the header is unreadable (decoding then says why)."""
    if not data:
        raise ImageDecodeError("empty file")
    width, height = imagesize.get(io.BytesIO(data), exif_rotation=False)
    if width > 0 and height > 0:
        size = int(width), int(height)
    else:
        try:
            with Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS) as picture:
                size = picture.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageDecodeError(f"image is too large to decode safely: {error}") from error
        except (UnidentifiedImageError, *_CORRUPT):
            return None
    _check_pixels(size, max_pixels)
    return size


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Pillow image with its pixels loaded and EXIF orientation applied, after the size checks."""
    image_size(data, max_pixels)
    try:
        picture = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError:
        raise ImageDecodeError(f"not a recognised image format (supported: {', '.join(SUPPORTED_FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # Pillow's own global limit, for a header imagesize could not read; ours is max_pixels.
        raise ImageDecodeError(f"image is too large to decode safely: {error}") from error
    except _CORRUPT as error:
        raise ImageDecodeError(f"truncated or corrupt image data: {error}") from error
    _check_pixels(picture.size, max_pixels)
    try:
        picture.load()
        ImageOps.exif_transpose(picture, in_place=True)
    except _CORRUPT as error:
        raise ImageDecodeError(f"truncated or corrupt image data: {error}") from error
    return picture


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    pixels = size[0] * size[1]
    if pixels > max_pixels:
        raise ImageDecodeError(
            f"image is {_dims(size)} ({pixels / 1e6:.1f} MP), above the {max_pixels / 1e6:.1f} MP limit"
        )


def _dims(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _to_rgb(picture: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    if picture.mode.startswith("I") or picture.mode == "F":
        return np.repeat(_high_depth_to_8bit(picture)[:, :, None], 3, axis=2)
    if picture.mode == "CMYK":
        return np.array(_cmyk_to_rgb(picture))
    if picture.has_transparency_data:
        canvas = Image.new("RGBA", picture.size, (*background, 255))
        return np.array(Image.alpha_composite(canvas, picture.convert("RGBA")).convert("RGB"))
    return np.array(picture.convert("RGB"))


def _alpha(picture: Image.Image) -> np.ndarray | None:
    """The alpha channel (palette transparency included) of an 8-bit image, or None."""
    if not picture.has_transparency_data or picture.mode.startswith("I") or picture.mode == "F":
        return None
    return np.array(picture.convert("RGBA").getchannel("A"))


def _high_depth_to_8bit(picture: Image.Image) -> np.ndarray:
    """Scale a 16/32-bit integer or float grey image to uint8 (Pillow's own convert("L") clips instead).

    Mode "I" does not say its bit depth: values that fit in 16 bits are taken as 16-bit (how Pillow reads 16-bit
    PGM), larger ones as 31-bit (non-negative int32); negatives clip to 0. Floats in [0, 1] are scaled by 255,
    others read as 0-255 and clipped.
    """
    values = np.asarray(picture)
    if picture.mode == "F":
        values = np.nan_to_num(values.astype(np.float64))
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
        return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
    values = np.clip(values.astype(np.int64), 0, None)
    bits = 16 if not values.size or values.max() < 2**16 else 31
    return (values >> (bits - 8)).astype(np.uint8)


def _cmyk_to_rgb(picture: Image.Image) -> Image.Image:
    profile = picture.info.get("icc_profile")
    if profile and ImageCms is not None:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            return ImageCms.profileToProfile(picture, source, _srgb_profile(), outputMode="RGB")
        except ImageCms.PyCMSError:
            pass  # an unusable embedded profile: fall back to Pillow's plain conversion rather than fail
    return picture.convert("RGB")


@cache
def _srgb_profile():
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
