"""`planllm ros replay` / `planllm ros record`: a bag replayed in real time over DDS and recorded
again holds the same messages with the same spacing (sqlite3 and mcap)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader, Writer
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from planllm_ros.ros.image_conv import image_to_rgb, rgb_to_image
from planllm_ros.tools.bag import BAG_VERSION, STORAGES

pytestmark = pytest.mark.ros
COUNT = 8
SPACING_NS = 150_000_000


def planllm(*args: str) -> list[str]:
    return [sys.executable, "-m", "planllm_ros.cli", "ros", *args]


def write_source_bag(path: Path, storage: str, frames: list[np.ndarray]) -> None:
    typestore = get_typestore(Stores.ROS2_KILTED)
    with Writer(path, version=BAG_VERSION, storage_plugin=STORAGES[storage]) as writer:
        camera = writer.add_connection("/camera/image", "sensor_msgs/msg/Image", typestore=typestore)
        notes = writer.add_connection("/notes", "std_msgs/msg/String", typestore=typestore)
        for i, frame in enumerate(frames):
            header = Header(frame_id=f"frame{i}")
            header.stamp.sec = 1000 + i
            stamp = 10**18 + i * SPACING_NS
            writer.write(camera, stamp, serialize_message(rgb_to_image(frame, "bgr8", header)))
            writer.write(notes, stamp + 1, serialize_message(String(data=f"note {i}")))


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_replay_then_record_round_trip(ros_env: dict[str, str], tmp_path: Path, storage: str) -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(COUNT)]
    source, copy = tmp_path / "source", tmp_path / "copy"
    write_source_bag(source, storage, frames)
    record = subprocess.Popen(
        planllm("record", "--out", str(copy), "--topics", "/camera/image", "/notes", "--storage", storage,
                "--max-messages", str(2 * COUNT), "--duration", "60"),
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    replay = subprocess.run(
        planllm("replay", str(source), "--wait-for-subscribers", "20"), env=ros_env, capture_output=True, text=True, timeout=90
    )
    assert replay.returncode == 0, replay.stderr
    assert f"replayed {2 * COUNT} messages" in replay.stdout
    out, _ = record.communicate(timeout=60)
    assert record.returncode == 0, out
    assert f"recorded {2 * COUNT} messages" in out

    with Reader(copy) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == {
            "/camera/image": "sensor_msgs/msg/Image",
            "/notes": "std_msgs/msg/String",
        }
        received = [(c.topic, stamp, bytes(data)) for c, stamp, data in reader.messages()]
    images = [(stamp, deserialize_message(data, Image)) for topic, stamp, data in received if topic == "/camera/image"]
    notes = [deserialize_message(data, String).data for topic, _, data in received if topic == "/notes"]
    assert notes == [f"note {i}" for i in range(COUNT)]
    assert [msg.header.frame_id for _, msg in images] == [f"frame{i}" for i in range(COUNT)]
    for (_, msg), frame in zip(images, frames, strict=True):
        assert msg.encoding == "bgr8"
        np.testing.assert_array_equal(image_to_rgb(msg), frame)
    # real time: the recorded arrival times keep the original spacing (generous bounds: 2 shared cores)
    span_s = (images[-1][0] - images[0][0]) / 1e9
    assert 0.7 * (COUNT - 1) * SPACING_NS / 1e9 <= span_s <= (COUNT - 1) * SPACING_NS / 1e9 + 2.0


def run_tool(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(planllm(*args), env=env, capture_output=True, text=True, timeout=60)


def test_tools_report_bad_input_clearly(ros_env: dict[str, str], tmp_path: Path) -> None:
    missing = run_tool(ros_env, "replay", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert f"{tmp_path / 'nope'}: cannot open the bag" in missing.stderr
    (tmp_path / "exists").mkdir()
    exists = run_tool(ros_env, "record", "--out", str(tmp_path / "exists"), "--topics", "/x", "--discovery-timeout", "1")
    assert exists.returncode == 1
    assert "already exists" in exists.stderr
    silent = run_tool(ros_env, "record", "--out", str(tmp_path / "new"), "--topics", "/nobody/publishes", "--discovery-timeout", "1")
    assert silent.returncode == 1
    assert "no publisher of /nobody/publishes appeared within 1.0 s" in silent.stderr
