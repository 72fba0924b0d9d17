"""Camera frames to HxWx3 uint8 RGB from their raw pixel buffer or JPEG/PNG bytes, without ROS.

The node's message conversion (planllm_ros/ros/image_conv.py) and `planllm data episodes`,
which reads the same messages back from bags, decode through here, so a frame becomes the
same pixels live and recorded. Every malformed input raises ImageConversionError with a
message that says what was wrong, so the node can log it and drop the frame instead of crashing.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

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
    """A frame that cannot be turned into RGB (the text says why)."""


def check_size(width: int, height: int, what: str) -> None:
    """Refuse an empty frame or one beyond MAX_SIDE, naming it as `what`."""
    if width <= 0 or height <= 0:
        raise ImageConversionError(f"{what} is empty: {width}x{height}")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ImageConversionError(f"{what} is {width}x{height}, larger than the {MAX_SIDE}x{MAX_SIDE} limit")


def decode_raw(data: bytes | np.ndarray, encoding: str, height: int, width: int, step: int) -> np.ndarray:
    """An HxWx3 uint8 RGB copy of a raw `encoding` buffer, honouring `step` (row padding)."""
    if encoding not in ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding {encoding!r}; supported: {', '.join(ENCODINGS)}")
    check_size(width, height, f"{encoding} image")
    channels, order = ENCODINGS[encoding]
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageConversionError(
            f"{encoding} image step {step} is smaller than one row ({width} px x {channels} B = {row_bytes} B)"
        )
    buffer = np.frombuffer(data, dtype=np.uint8)
    needed = step * height
    if buffer.size < needed:
        raise ImageConversionError(
            f"{encoding} image data is truncated: {buffer.size} B, expected step {step} x height {height} = {needed} B"
        )
    rows = buffer[:needed].reshape(height, step)[:, :row_bytes]
    pixels = rows.reshape(height, width, channels)
    if order is None:
        return np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, list(order)])


def decode_compressed(data: bytes | np.ndarray, fmt: str) -> np.ndarray:
    """Decode JPEG or PNG bytes (announced as format `fmt`) to HxWx3 uint8 RGB."""
    if len(data) == 0:
        raise ImageConversionError(f"compressed image (format {fmt!r}) has no data")
    try:
        with PILImage.open(io.BytesIO(bytes(data))) as image:
            # The header gives the size before decoding: refuse absurd sizes before allocating.
            check_size(image.width, image.height, f"compressed {image.format} image")
            if image.format not in COMPRESSED_FORMATS.values():
                raise ImageConversionError(f"compressed image is {image.format}, expected JPEG or PNG")
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except ImageConversionError:
        raise
    except (OSError, ValueError, PILImage.DecompressionBombError) as error:
        raise ImageConversionError(
            f"compressed image (format {fmt!r}, {len(data)} B) is not a decodable JPEG/PNG: {error}"
        ) from error
