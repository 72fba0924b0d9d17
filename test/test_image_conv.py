"""sensor_msgs <-> numpy conversion: every encoding, row padding, and every malformed input."""
from __future__ import annotations

import array
import io

import numpy as np
import pytest
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage, Image

from planllm_ros.ros.image_conv import (
    compressed_to_rgb,
    image_to_rgb,
    msg_to_rgb,
    rgb_to_compressed,
    rgb_to_image,
)
from planllm_ros.runtime.images import MAX_SIDE, ImageConversionError


@pytest.fixture
def rgb() -> np.ndarray:
    """A 5x7 frame whose channels all differ, so a swapped R/B shows."""
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


def raw(encoding: str, width: int, height: int, step: int, data: bytes) -> Image:
    msg = Image(width=width, height=height, encoding=encoding, step=step)
    msg.data = array.array("B", data)
    return msg


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
@pytest.mark.parametrize("padding", [0, 3])
def test_colour_encodings_round_trip(rgb: np.ndarray, encoding: str, padding: int) -> None:
    msg = rgb_to_image(rgb, encoding, padding=padding)
    channels = 4 if encoding.endswith("a8") else 3
    assert msg.step == 7 * channels + padding
    assert len(msg.data) == msg.step * 5
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_bgr8_bytes_are_in_bgr_order(rgb: np.ndarray) -> None:
    """Hand-built bytes, not our own encoder: B,G,R per pixel must come back as R,G,B."""
    bgr = np.ascontiguousarray(rgb[:, :, ::-1]).tobytes()
    np.testing.assert_array_equal(image_to_rgb(raw("bgr8", 7, 5, 21, bgr)), rgb)


def test_bgra8_ignores_alpha(rgb: np.ndarray) -> None:
    bgra = np.concatenate([rgb[:, :, ::-1], np.zeros((5, 7, 1), np.uint8)], axis=2).tobytes()
    np.testing.assert_array_equal(image_to_rgb(raw("bgra8", 7, 5, 28, bgra)), rgb)


def test_mono8_with_padding_becomes_grey_rgb() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    padded = np.concatenate([grey, np.full((3, 2), 99, np.uint8)], axis=1).tobytes()
    out = image_to_rgb(raw("mono8", 4, 3, 6, padded))
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


def test_mono8_from_rgb_is_luma(rgb: np.ndarray) -> None:
    out = image_to_rgb(rgb_to_image(rgb, "mono8"))
    expected = np.asarray(PILImage.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(out[:, :, 0], expected)


def test_png_is_lossless_and_jpeg_close() -> None:
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (24, 1, 3))
    np.testing.assert_array_equal(compressed_to_rgb(rgb_to_compressed(smooth, "png")), smooth)
    jpeg = compressed_to_rgb(rgb_to_compressed(smooth, "jpeg"))
    assert jpeg.shape == smooth.shape
    assert np.abs(jpeg.astype(int) - smooth.astype(int)).mean() < 4


def test_msg_to_rgb_dispatches_on_type(rgb: np.ndarray) -> None:
    np.testing.assert_array_equal(msg_to_rgb(rgb_to_image(rgb)), rgb)
    np.testing.assert_array_equal(msg_to_rgb(rgb_to_compressed(rgb, "png")), rgb)


@pytest.mark.parametrize(
    ("msg", "message"),
    [
        (raw("mono16", 2, 2, 4, bytes(8)), "unsupported image encoding 'mono16'"),
        (raw("", 2, 2, 6, bytes(12)), "unsupported image encoding ''"),
        (raw("rgb8", 0, 0, 0, b""), "empty"),
        (raw("rgb8", 4, 3, 12, bytes(35)), "truncated: 35 B, expected step 12 x height 3 = 36 B"),
        (raw("rgb8", 4, 3, 12, b""), "truncated"),
        (raw("rgb8", 4, 3, 11, bytes(33)), "step 11 is smaller than one row"),
        (raw("rgb8", MAX_SIDE + 1, 1, 3 * (MAX_SIDE + 1), b""), "larger than the 8192x8192 limit"),
        (raw("mono8", 1, 2**31, 1, b""), "larger than"),
    ],
)
def test_bad_images_raise_clear_errors(msg: Image, message: str) -> None:
    with pytest.raises(ImageConversionError, match=message.replace("(", r"\(")):
        image_to_rgb(msg)


def compressed(data: bytes, fmt: str = "jpeg") -> CompressedImage:
    msg = CompressedImage(format=fmt)
    msg.data = array.array("B", data)
    return msg


def test_bad_compressed_images_raise_clear_errors(rgb: np.ndarray) -> None:
    with pytest.raises(ImageConversionError, match="has no data"):
        compressed_to_rgb(compressed(b""))
    with pytest.raises(ImageConversionError, match="not a decodable JPEG/PNG"):
        compressed_to_rgb(compressed(b"definitely not an image"))
    jpeg = bytes(rgb_to_compressed(rgb).data)
    with pytest.raises(ImageConversionError, match="not a decodable JPEG/PNG"):
        compressed_to_rgb(compressed(jpeg[: len(jpeg) // 2]))
    gif = io.BytesIO()
    PILImage.fromarray(rgb).save(gif, format="GIF")
    with pytest.raises(ImageConversionError, match="is GIF, expected JPEG or PNG"):
        compressed_to_rgb(compressed(gif.getvalue(), "gif"))


def test_huge_compressed_image_is_refused_before_decoding() -> None:
    """A small PNG that claims a 9000x10 canvas: refused from its header."""
    buffer = io.BytesIO()
    PILImage.new("L", (MAX_SIDE + 808, 10)).save(buffer, format="PNG")
    with pytest.raises(ImageConversionError, match="larger than the 8192x8192 limit"):
        compressed_to_rgb(compressed(buffer.getvalue(), "png"))


def test_encoder_rejects_bad_arrays() -> None:
    with pytest.raises(ImageConversionError, match="HxWx3 uint8"):
        rgb_to_image(np.zeros((4, 4), np.uint8))
    with pytest.raises(ImageConversionError, match="HxWx3 uint8"):
        rgb_to_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ImageConversionError, match="unsupported image encoding 'yuv422'"):
        rgb_to_image(np.zeros((4, 4, 3), np.uint8), "yuv422")
    with pytest.raises(ImageConversionError, match="unsupported compressed format 'bmp'"):
        rgb_to_compressed(np.zeros((4, 4, 3), np.uint8), "bmp")
