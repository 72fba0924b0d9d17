"""sensor_msgs Image / CompressedImage <-> numpy HxWx3 uint8 RGB, without cv_bridge.

cv_bridge for ROS 2 is not installable from PyPI (and PyPI's cv-bridge is the ROS 1 one, broken
with numpy 2), so the node converts with numpy. Every malformed message raises
ImageConversionError with a message that says what was wrong, so the node can log it and
drop the frame instead of crashing.
"""
from __future__ import annotations

import array
import io

import numpy as np
from PIL import Image as PILImage
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

# Larger frames are refused before any allocation: no camera we plan from is bigger, and a
# corrupt height/width must not make the node allocate gigabytes.
MAX_SIDE = 8192
# encoding -> (channels, index of R,G,B in a pixel; None for grey)
ENCODINGS: dict[str, tuple[int, tuple[int, int, int] | None]] = {
    "rgb8": (3, (0, 1, 2)),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, (0, 1, 2)),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, None),
}
COMPRESSED_FORMATS = {"jpeg": "JPEG", "png": "PNG"}


class ImageConversionError(ValueError):
    """A message that cannot be turned into an RGB frame (the text says why)."""


def _check_size(width: int, height: int, what: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageConversionError(f"{what} is empty: {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageConversionError(f"{what} is {width}x{height}, larger than the {MAX_SIDE}x{MAX_SIDE} limit")


def image_to_rgb(msg: Image) -> np.ndarray:
    """An HxWx3 uint8 RGB copy of a sensor_msgs/Image, honouring `step` (row padding)."""
    if msg.encoding not in ENCODINGS:
        raise ImageConversionError(
            f"unsupported image encoding {msg.encoding!r}; supported: {', '.join(ENCODINGS)}"
        )
    _check_size(msg.width, msg.height, f"{msg.encoding} image")
    channels, order = ENCODINGS[msg.encoding]
    row_bytes = msg.width * channels
    if msg.step < row_bytes:
        raise ImageConversionError(
            f"{msg.encoding} image step {msg.step} is smaller than one row ({msg.width} px x {channels} B = {row_bytes} B)"
        )
    data = np.frombuffer(msg.data, dtype=np.uint8)
    needed = msg.step * msg.height
    if data.size < needed:
        raise ImageConversionError(
            f"{msg.encoding} image data is truncated: {data.size} B, "
            f"expected step {msg.step} x height {msg.height} = {needed} B"
        )
    rows = data[:needed].reshape(msg.height, msg.step)[:, :row_bytes]
    pixels = rows.reshape(msg.height, msg.width, channels)
    if order is None:
        return np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, list(order)])


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """Decode a JPEG or PNG sensor_msgs/CompressedImage to HxWx3 uint8 RGB."""
    if len(msg.data) == 0:
        raise ImageConversionError(f"compressed image (format {msg.format!r}) has no data")
    try:
        with PILImage.open(io.BytesIO(bytes(msg.data))) as image:
            # The header gives the size before decoding: refuse absurd sizes before allocating.
            _check_size(image.width, image.height, f"compressed {image.format} image")
            if image.format not in COMPRESSED_FORMATS.values():
                raise ImageConversionError(f"compressed image is {image.format}, expected JPEG or PNG")
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except ImageConversionError:
        raise
    except (OSError, ValueError, PILImage.DecompressionBombError) as error:
        raise ImageConversionError(
            f"compressed image (format {msg.format!r}, {len(msg.data)} B) is not a decodable JPEG/PNG: {error}"
        ) from error


def msg_to_rgb(msg: Image | CompressedImage) -> np.ndarray:
    """Either message type to HxWx3 uint8 RGB."""
    if isinstance(msg, CompressedImage):
        return compressed_to_rgb(msg)
    return image_to_rgb(msg)


def _as_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageConversionError(f"expected an HxWx3 uint8 RGB array, got {rgb.dtype} {rgb.shape}")
    _check_size(rgb.shape[1], rgb.shape[0], "RGB array")
    return rgb


def rgb_to_image(
    rgb: np.ndarray, encoding: str = "rgb8", header: Header | None = None, padding: int = 0
) -> Image:
    """A sensor_msgs/Image in `encoding` from HxWx3 uint8 RGB; `padding` extra bytes per row
    (some drivers align rows, and the node must honour `step`)."""
    rgb = _as_rgb(rgb)
    if encoding not in ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}")
    channels, order = ENCODINGS[encoding]
    height, width = rgb.shape[:2]
    if order is None:  # ITU-R BT.601 luma, as PIL's "L" conversion
        pixels = np.asarray(PILImage.fromarray(rgb).convert("L"), dtype=np.uint8)[:, :, None]
    else:
        pixels = np.full((height, width, channels), 255, dtype=np.uint8)
        pixels[:, :, list(order)] = rgb
    rows = pixels.reshape(height, width * channels)
    if padding:
        rows = np.concatenate([rows, np.zeros((height, padding), dtype=np.uint8)], axis=1)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0, step=rows.shape[1])
    msg.header = header or Header()
    msg.data = array.array("B", np.ascontiguousarray(rows).tobytes())
    return msg


def rgb_to_compressed(
    rgb: np.ndarray, fmt: str = "jpeg", header: Header | None = None, quality: int = 90
) -> CompressedImage:
    """A JPEG or PNG sensor_msgs/CompressedImage from HxWx3 uint8 RGB."""
    rgb = _as_rgb(rgb)
    if fmt not in COMPRESSED_FORMATS:
        raise ImageConversionError(f"unsupported compressed format {fmt!r}; supported: {', '.join(COMPRESSED_FORMATS)}")
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt == "jpeg" else {}
    PILImage.fromarray(rgb).save(buffer, format=COMPRESSED_FORMATS[fmt], **options)
    msg = CompressedImage(format=fmt)
    msg.header = header or Header()
    msg.data = array.array("B", buffer.getvalue())
    return msg
