"""The frames of one recording: a rosbag2 folder or a folder of timestamped frames.

- rosbag2 (sqlite3 or mcap, read with the pure-Python `rosbags`): the frames of one
  sensor_msgs/Image or CompressedImage (JPEG/PNG) topic, timed by their header stamps (by the
  recording time when any frame has a zero stamp);
- a folder of frames: `<time in seconds>.png` or `.jpg` (e.g. `0.000.png`, `0.100.png`).

Times are shifted so the first frame is at 0 s: the time base of the steps files. Every frame
of a recording must have one size. Faults (an unreadable bag, a missing topic, a frame that
does not decode, mixed sizes) are DatasetErrors naming the recording and the frame.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from planllm_ros.runtime.images import ImageConversionError, decode_compressed, decode_raw
from training.datasets.base import DatasetError

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")
BAG_METADATA = "metadata.yaml"
HASH_CHUNK = 1 << 20


@dataclass
class Recording:
    """One episode's frames: times (s from the first frame, ascending), one (height, width)."""

    path: Path
    kind: str  # "rosbag2" | "frames"
    topic: str | None  # the image topic of a bag
    times: np.ndarray  # (N,) float64
    size: tuple[int, int]
    _order: np.ndarray  # frame index (time order) -> position in the bag / file list
    _files: tuple[Path, ...] = ()

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """(index, HxWx3 uint8 RGB) of the frames `indices`, in the recording's storage order."""
        wanted = {int(self._order[i]): int(i) for i in indices}
        if self.kind == "frames":
            for position in sorted(wanted):
                yield wanted[position], _decode_file(self._files[position])
            return
        for position, (message, msgtype, _) in enumerate(_bag_frames(self.path, self.topic)):
            if position in wanted:
                yield wanted[position], _decode_message(message, msgtype, self.path, self.topic, position)

    def content_hash(self) -> str:
        """sha256 of what the frames come from (the bag's files, or the frame files and names)."""
        digest = hashlib.sha256()
        files = sorted(p for p in self.path.iterdir() if p.is_file()) if self.kind == "rosbag2" else self._files
        for path in files:
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as f:
                while chunk := f.read(HASH_CHUNK):
                    digest.update(chunk)
        if self.topic:
            digest.update(self.topic.encode())
        return digest.hexdigest()[:24]


def open_recording(path: Path, image_topic: str | None = None) -> Recording:
    """A bag when `path` holds metadata.yaml, else a folder of frames."""
    if (path / BAG_METADATA).is_file():
        return _open_bag(path, image_topic)
    return _open_frames(path)


def _open_frames(path: Path) -> Recording:
    files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES]
    if not files:
        raise DatasetError(f"{path}: no frames: expected a rosbag2 folder ({BAG_METADATA}) or frames named by "
                           f"their time in seconds ({', '.join(FRAME_SUFFIXES)}, e.g. 0.000.png)")
    stamps = []
    for file in files:
        try:
            stamps.append(float(file.stem))
        except ValueError:
            raise DatasetError(f"{file}: a frame's name must be its time in seconds (e.g. 12.345.png)") from None
    order = np.argsort(stamps, kind="stable")
    files = [files[i] for i in order]
    sizes = [_file_size(f) for f in files]
    _check_sizes(sizes, [str(f) for f in files])
    times = np.asarray(stamps, dtype=np.float64)[order]
    return Recording(path, "frames", None, times - times[0], sizes[0], np.arange(len(files)), tuple(files))


def _file_size(path: Path) -> tuple[int, int]:
    try:
        with PILImage.open(path) as image:
            return image.height, image.width
    except (OSError, ValueError, PILImage.DecompressionBombError) as err:
        raise DatasetError(f"{path}: not a readable image ({err})") from err


def _decode_file(path: Path) -> np.ndarray:
    try:
        with PILImage.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError, PILImage.DecompressionBombError) as err:
        raise DatasetError(f"{path}: not a readable image ({err})") from err


def _check_sizes(sizes: list[tuple[int, int]], names: list[str]) -> None:
    for size, name in zip(sizes, names):
        if size != sizes[0]:
            raise DatasetError(f"{name}: frame is {size[1]}x{size[0]}, but the recording's first frame ({names[0]}) "
                               f"is {sizes[0][1]}x{sizes[0][0]}: the frames of one recording must share one size")


def typestore():
    """The message definitions of the ROS release the bags are written with."""
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def image_topics(path: Path) -> dict[str, str]:
    """topic -> message type of the bag's image topics."""
    from rosbags.rosbag2 import Reader, ReaderError

    try:
        with Reader(path) as reader:
            return {c.topic: c.msgtype for c in reader.connections if c.msgtype in IMAGE_TYPES}
    except (ReaderError, OSError, ValueError, KeyError) as err:
        raise DatasetError(f"{path}: cannot read the bag ({err})") from err


def _pick_topic(path: Path, image_topic: str | None) -> str:
    topics = image_topics(path)
    if image_topic is not None:
        if image_topic not in topics:
            raise DatasetError(f"{path}: no image topic {image_topic!r} in the bag (image topics: "
                               f"{', '.join(sorted(topics)) or 'none'})")
        return image_topic
    if len(topics) != 1:
        raise DatasetError(f"{path}: {'no image topic' if not topics else 'several image topics'} in the bag "
                           f"({', '.join(sorted(topics)) or 'none'}): name one with --image-topic")
    return next(iter(topics))


def _bag_frames(path: Path, topic: str) -> Iterator[tuple[object, str, int]]:
    """(deserialized message, type, recording time in ns) of every message on `topic`, in storage order."""
    from rosbags.rosbag2 import Reader, ReaderError

    types = typestore()
    try:
        with Reader(path) as reader:
            connections = [c for c in reader.connections if c.topic == topic]
            for position, (connection, logtime, raw) in enumerate(reader.messages(connections=connections)):
                try:
                    message = types.deserialize_cdr(raw, connection.msgtype)
                except Exception as err:  # rosbags raises assorted errors for corrupt CDR
                    raise DatasetError(f"{path}: message {position} on {topic} does not deserialize as "
                                       f"{connection.msgtype} ({err})") from err
                yield message, connection.msgtype, logtime
    except (ReaderError, OSError) as err:
        raise DatasetError(f"{path}: cannot read the bag ({err})") from err


def _message_size(message, msgtype: str, path: Path, topic: str, position: int) -> tuple[int, int]:
    if msgtype.endswith("/Image"):
        return int(message.height), int(message.width)
    try:
        with PILImage.open(io.BytesIO(bytes(message.data))) as image:
            return image.height, image.width
    except (OSError, ValueError, PILImage.DecompressionBombError) as err:
        raise DatasetError(f"{path}: frame {position} on {topic} is not a decodable JPEG/PNG ({err})") from err


def _decode_message(message, msgtype: str, path: Path, topic: str, position: int) -> np.ndarray:
    """The frame's pixels, decoded as the node decodes them live (planllm_ros/runtime/images.py)."""
    try:
        if msgtype.endswith("/Image"):
            return decode_raw(message.data, message.encoding, message.height, message.width, message.step)
        return decode_compressed(message.data, message.format)
    except ImageConversionError as err:
        raise DatasetError(f"{path}: frame {position} on {topic}: {err}") from err


def _open_bag(path: Path, image_topic: str | None) -> Recording:
    topic = _pick_topic(path, image_topic)
    stamps, logtimes, sizes = [], [], []
    for position, (message, msgtype, logtime) in enumerate(_bag_frames(path, topic)):
        stamps.append(message.header.stamp.sec * 10**9 + message.header.stamp.nanosec)
        logtimes.append(logtime)
        sizes.append(_message_size(message, msgtype, path, topic, position))
    if not stamps:
        raise DatasetError(f"{path}: no frames on {topic}")
    _check_sizes(sizes, [f"{path}: frame {i} on {topic}" for i in range(len(sizes))])
    nanoseconds = np.asarray(stamps if all(stamps) else logtimes, dtype=np.int64)
    order = np.argsort(nanoseconds, kind="stable")
    times = (nanoseconds[order] - nanoseconds[order[0]]) / 1e9
    return Recording(path, "rosbag2", topic, times, sizes[0], order)
