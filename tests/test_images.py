"""The image codec against real photos and bad inputs built here: empty, garbage, truncated, bombs, odd modes."""

from __future__ import annotations

import io
import itertools
import struct
import time
import warnings
import zlib

import cv2
import fsspec
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile

from legoedit_core.data import images
from legoedit_core.data.images import (
    ImageDecodeError,
    decode_image,
    decode_mask,
    encode_jpeg,
    encode_png,
    read_image,
    read_mask,
    thumbnail,
    write_image,
)


def _save(picture: Image.Image, format: str, **params) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format, **params)
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A real 8x8 PNG whose IHDR is patched to claim another size, with a valid chunk CRC."""
    png = bytearray(encode_png(np.zeros((8, 8, 3), np.uint8)))
    assert png[12:16] == b"IHDR"
    png[16:24] = struct.pack(">II", width, height)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    return bytes(png)


def _png_rgba(rgba: np.ndarray) -> bytes:
    return _save(Image.fromarray(rgba), "PNG")


@pytest.fixture
def pixels_never_decoded(monkeypatch):
    """Fail the test if any pixel data is decoded."""

    def refuse(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


# --- bad inputs -------------------------------------------------------------------------------------------------


def test_empty_file():
    with pytest.raises(ImageDecodeError, match="^empty file$"):
        decode_image(b"")


def test_random_bytes_are_not_an_image():
    garbage = np.random.default_rng(0).bytes(4096)
    with pytest.raises(ImageDecodeError, match="not a recognised image format"):
        decode_image(garbage)


def test_formats_outside_the_allowlist_are_refused():
    # Pillow knows EPS, but loading it would run Ghostscript on untrusted input.
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(ImageDecodeError, match="not a recognised image format"):
        decode_image(eps)


@pytest.mark.parametrize("encoder", [encode_jpeg, encode_png])
def test_truncated_file(astronaut, encoder):
    whole = encoder(astronaut)
    assert decode_image(whole).shape == astronaut.shape
    with pytest.raises(ImageDecodeError, match="truncated or corrupt image data: image file is truncated"):
        decode_image(whole[: len(whole) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("pillow_limit", [Image.MAX_IMAGE_PIXELS, None], ids=["pillow-default", "pillow-off"])
def test_bomb_header_is_refused_before_decoding(pixels_never_decoded, monkeypatch, pillow_limit):
    # Whatever Pillow's own global limit is, the refusal is ours and names the size.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(_png_claiming(30000, 30000))
    assert time.perf_counter() - start < 0.5
    assert str(caught.value) == "image is 30000x30000 (900.0 MP), above the 67.1 MP limit"


def test_bomb_check_falls_back_to_pillows_header(pixels_never_decoded, monkeypatch):
    # A header imagesize cannot read still gets checked, from the size Pillow parses without decoding.
    monkeypatch.setattr(images.imagesize, "get", lambda *args, **kwargs: (-1, -1))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(ImageDecodeError, match=r"^image is 9000x9000 \(81.0 MP\), above the 67.1 MP limit$"):
        decode_image(_png_claiming(9000, 9000))


def test_pillows_own_bomb_error_becomes_a_decode_error(monkeypatch):
    monkeypatch.setattr(images.imagesize, "get", lambda *args, **kwargs: (-1, -1))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    with pytest.raises(ImageDecodeError, match="too large to decode safely: Image size \\(400 pixels\\)"):
        decode_image(encode_png(np.zeros((20, 20, 3), np.uint8)))


def test_pillows_bomb_warning_raised_as_an_error_becomes_a_decode_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 400 pixels: Pillow warns, it does not refuse
    data = encode_png(np.zeros((20, 20, 3), np.uint8))
    with pytest.warns(Image.DecompressionBombWarning):
        assert decode_image(data).shape == (20, 20, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageDecodeError, match="too large to decode safely"):
            decode_image(data)


def test_max_pixels_is_per_call(astronaut):
    with pytest.raises(ImageDecodeError, match=r"^image is 2000x1000 \(2.0 MP\), above the 1.5 MP limit$"):
        decode_image(_png_claiming(2000, 1000), max_pixels=1_500_000)
    data = encode_png(astronaut)
    with pytest.raises(ImageDecodeError, match=r"^image is 256x256 \(0.1 MP\), above the"):
        decode_image(data, max_pixels=256 * 256 - 1)
    assert decode_image(data, max_pixels=256 * 256).shape == (256, 256, 3)


# --- modes ------------------------------------------------------------------------------------------------------


def test_cmyk_jpeg_without_profile_converts_like_pillow(astronaut):
    decoded = decode_image(_save(Image.fromarray(astronaut).convert("CMYK"), "JPEG", quality=95))
    assert decoded.shape == astronaut.shape
    assert np.abs(decoded.astype(int) - astronaut).mean() < 4


def _lab16(lightness: float, a: float, b: float) -> list[int]:
    """CIELAB in the ICC v2 16-bit encoding."""
    return [round(lightness / 100 * 0xFF00), round((a + 128) * 256), round((b + 128) * 256)]


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _cmyk_profile_inking_blue() -> bytes:
    """A minimal ICC v2 CMYK profile: no ink is white, any K is black, any other ink prints pure blue."""
    clut = []
    for _, _, _, k in itertools.product((0, 1), repeat=4):
        clut += _lab16(0, 0, 0) if k else _lab16(29.6, 68.3, -112.0)
    clut[:3] = _lab16(100, 0, 0)
    lut = (
        b"mft2" + bytes(4) + bytes([4, 3, 2, 0])
        + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
        + struct.pack(">HH", 2, 2) + struct.pack(">8H", *[0, 65535] * 4)
        + struct.pack(">48H", *clut) + struct.pack(">6H", *[0, 65535] * 3)
    )  # fmt: skip
    white_point = b"XYZ " + bytes(4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    tags = [(b"A2B0", lut), (b"wtpt", white_point)]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for signature, payload in tags:
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += payload + bytes(-len(payload) % 4)
    header = (
        struct.pack(">I", offset + len(body)) + bytes(4) + struct.pack(">I", 0x02100000)
        + b"prtrCMYKLab " + bytes(12) + b"acsp" + bytes(28)
        + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + bytes(48)
    )  # fmt: skip
    return header + struct.pack(">I", len(tags)) + table + body


def test_cmyk_jpeg_is_converted_through_its_embedded_profile():
    profile = _cmyk_profile_inking_blue()
    assert ImageCms.ImageCmsProfile(io.BytesIO(profile)).profile.xcolor_space == "CMYK"
    magenta_and_yellow = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    # Without a profile this ink is red; the embedded profile says it prints blue.
    assert decode_image(_save(magenta_and_yellow, "JPEG", quality=95))[8, 8].tolist() == [255, 0, 0]
    blue = decode_image(_save(magenta_and_yellow, "JPEG", quality=95, icc_profile=profile))[8, 8]
    assert blue[2] > 240 and blue[0] < 20 and blue[1] < 20


def test_16bit_grey_png_is_scaled_not_clipped():
    grey = np.array([[0, 255, 32768, 65535]], np.uint16)
    ok, png = cv2.imencode(".png", grey)
    assert Image.open(io.BytesIO(png.tobytes())).mode == "I;16"
    decoded = decode_image(png.tobytes())
    assert decoded.shape == (1, 4, 3)
    assert decoded[0, :, 0].tolist() == [0, 0, 128, 255]
    assert decode_mask(png.tobytes()).tolist() == [[0, 0, 255, 255]]


def test_16bit_rgb_png_from_opencv():
    rgb = np.array([[[65535, 32768, 0], [256, 40000, 65280]]], np.uint16)
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1])  # OpenCV writes BGR
    decoded = decode_image(png.tobytes())
    assert decoded.dtype == np.uint8
    assert decoded.tolist() == (rgb >> 8).tolist() == [[[255, 128, 0], [1, 156, 255]]]


def test_16bit_pgm_opens_as_mode_i_and_is_scaled():
    pgm = b"P5 3 1 65535\n" + np.array([65535, 32768, 0], ">u2").tobytes()
    assert Image.open(io.BytesIO(pgm)).mode == "I"
    assert decode_image(pgm)[0, :, 0].tolist() == [255, 128, 0]


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I;16B", np.array([0, 32768, 65535], ">u2"), [0, 128, 255]),
        ("I", np.array([0, 2**30, 2**31 - 1], np.int32), [0, 128, 255]),
        ("F", np.array([0.0, 0.5, 1.0], np.float32), [0, 128, 255]),
        ("F", np.array([-5.0, 100.0, 300.0], np.float32), [0, 100, 255]),
    ],
)
def test_high_bit_depth_tiff(mode, values, expected):
    tiff = _save(Image.frombytes(mode, (3, 1), values.tobytes()), "TIFF")
    assert Image.open(io.BytesIO(tiff)).mode == mode
    decoded = decode_image(tiff)
    assert decoded[0, :, 0].tolist() == expected
    assert (decoded[..., 0] == decoded[..., 2]).all()


@pytest.mark.parametrize(("mode", "colour", "expected"), [("1", 1, [255] * 3), ("L", 77, [77] * 3)])
def test_bilevel_and_grey(mode, colour, expected):
    decoded = decode_image(_save(Image.new(mode, (5, 4), colour), "TIFF"))
    assert decoded.shape == (4, 5, 3) and decoded.dtype == np.uint8
    assert (decoded == expected).all()


def test_cielab_tiff():
    srgb_to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
    lab = ImageCms.applyTransform(Image.new("RGB", (5, 4), (255, 0, 0)), srgb_to_lab)
    tiff = _save(lab, "TIFF")
    assert Image.open(io.BytesIO(tiff)).mode == "LAB"
    assert np.abs(decode_image(tiff).astype(int) - [255, 0, 0]).max() <= 5


def test_rgba_is_composited_on_white_by_default():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[0, :, 3] = 255  # opaque red row
    rgba[1, :, 3] = 128  # half-transparent red row; rows 2-3 fully transparent
    data = _png_rgba(rgba)
    decoded = decode_image(data)
    assert decoded[0, 0].tolist() == [255, 0, 0]
    assert decoded[1, 0].tolist() == [255, 127, 127]
    assert decoded[3, 0].tolist() == [255, 255, 255]
    assert decode_image(data, background=(0, 0, 0))[3, 0].tolist() == [0, 0, 0]


def test_palette_png_with_transparency():
    palette = Image.new("P", (6, 2))
    palette.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    palette.putpixel((0, 0), 1)  # green; everything else index 0, which is transparent
    data = _save(palette, "PNG", transparency=0)
    decoded = decode_image(data)
    assert decoded[0, 0].tolist() == [0, 255, 0]
    assert decoded[1, 5].tolist() == [255, 255, 255]
    mask = decode_mask(data)
    assert mask.sum() == 255 and mask[0, 0] == 255


def test_grey_with_alpha():
    la = Image.merge("LA", [Image.new("L", (3, 1), 40), Image.frombytes("L", (3, 1), bytes([0, 255, 0]))])
    data = _save(la, "PNG")
    assert decode_image(data)[0].tolist() == [[255] * 3, [40] * 3, [255] * 3]
    assert decode_mask(data).tolist() == [[0, 255, 0]]


def test_exif_orientation_is_applied(astronaut):
    stored = astronaut[:, :200]  # 200 wide, 256 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    decoded = decode_image(_save(Image.fromarray(stored), "JPEG", quality=95, exif=exif))
    assert decoded.shape == (200, 256, 3)
    assert np.abs(decoded.astype(int) - np.rot90(stored, k=-1)).mean() < 4


# --- masks ------------------------------------------------------------------------------------------------------


def test_mask_from_alpha_channel():
    rgba = np.full((4, 6, 4), 255, np.uint8)  # white everywhere: the luminance would say "all selected"
    rgba[:, :3, 3] = 0
    rgba[:, 3, 3] = 100  # below the threshold
    rgba[:, 4, 3] = 200
    mask = decode_mask(_png_rgba(rgba), size=(6, 4))
    assert mask.dtype == np.uint8 and mask.shape == (4, 6)
    assert mask[0].tolist() == [0, 0, 0, 0, 255, 255]


def test_opaque_alpha_falls_back_to_luminance():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0] = [255, 255, 255, 255]
    assert decode_mask(_png_rgba(rgba)).tolist() == [[255, 255], [0, 0]]


def test_mask_from_grey_levels():
    grey = np.array([[0, 100, 127, 128, 200, 255]], np.uint8)
    assert decode_mask(encode_png(grey)).tolist() == [[0, 0, 0, 255, 255, 255]]


def test_mask_of_the_wrong_size():
    with pytest.raises(ImageDecodeError, match="^mask is 100x80 but the image is 256x256$"):
        decode_mask(encode_png(np.zeros((80, 100), np.uint8)), size=(256, 256))


# --- encoding, files, thumbnails --------------------------------------------------------------------------------


def test_png_round_trip_is_exact(astronaut):
    assert np.array_equal(decode_image(encode_png(astronaut)), astronaut)
    mask = np.zeros((32, 48), np.uint8)
    mask[8:20, 10:30] = 255
    assert np.array_equal(decode_mask(encode_png(mask)), mask)


def test_jpeg_round_trip_is_close(coffee):
    data = encode_jpeg(coffee, quality=92)
    assert data[:3] == b"\xff\xd8\xff"
    assert np.abs(decode_image(data).astype(int) - coffee).mean() < 5
    assert len(encode_jpeg(coffee, quality=30)) < len(data)


def test_encode_refuses_arrays_that_are_not_images():
    with pytest.raises(ValueError, match="expected a uint8 image"):
        encode_png(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="expected a uint8 image"):
        encode_png(np.zeros((4, 4, 2), np.uint8))


def test_write_and_read_a_local_path(tmp_path, chelsea):
    write_image(chelsea, tmp_path / "cat.png")
    assert np.array_equal(read_image(tmp_path / "cat.png"), chelsea)
    write_image(chelsea, str(tmp_path / "cat.JPG"))
    assert (tmp_path / "cat.JPG").read_bytes()[:3] == b"\xff\xd8\xff"
    assert np.abs(read_image(tmp_path / "cat.JPG").astype(int) - chelsea).mean() < 3
    with pytest.raises(ValueError, match=r"cannot choose an image format .*cat\.txt'.*\.png"):
        write_image(chelsea, tmp_path / "cat.txt")


def test_read_through_fsspec_memory(astronaut):
    fs = fsspec.filesystem("memory")
    root = f"/test-images-{id(astronaut)}"
    try:
        write_image(astronaut, f"memory://{root}/a.webp")
        mask = np.zeros((256, 256), np.uint8)
        mask[:100] = 255
        write_image(mask, f"memory://{root}/a-mask.png")
        fs.pipe(f"{root}/broken.png", encode_png(astronaut)[:500])

        assert read_image(f"memory://{root}/a.webp").shape == (256, 256, 3)
        assert np.array_equal(read_mask(f"{root}/a-mask.png", fs=fs, size=(256, 256)), mask)
        with pytest.raises(ImageDecodeError, match=f"^memory://{root}/broken.png: truncated or corrupt"):
            read_image(f"memory://{root}/broken.png")
        with pytest.raises(ImageDecodeError, match="a-mask.png: mask is 256x256 but the image is 64x64"):
            read_mask(f"memory://{root}/a-mask.png", size=(64, 64))
        with pytest.raises(FileNotFoundError):
            read_image(f"memory://{root}/missing.png")
    finally:
        fs.rm(root, recursive=True)


def test_thumbnail_keeps_the_aspect_ratio(coffee, astronaut):
    assert coffee.shape[1] == 256 and coffee.shape[0] < 256
    small = thumbnail(coffee, max_side=64)
    assert small.shape == (round(coffee.shape[0] * 64 / 256), 64, 3) and small.dtype == np.uint8
    assert abs(small.mean() - coffee.mean()) < 3
    assert thumbnail(astronaut, max_side=512).shape == astronaut.shape  # never enlarges


def test_thumbnail_of_a_mask_stays_binary():
    mask = np.zeros((200, 100), np.uint8)
    mask[50:150, 20:80] = 255
    small = thumbnail(mask, max_side=50)
    assert small.shape == (50, 25)
    assert set(np.unique(small).tolist()) == {0, 255}
    assert abs((small > 0).mean() - 0.3) < 0.05
