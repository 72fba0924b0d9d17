"""`planllm data episodes`: source folders of frames and rosbag2 recordings, every validation
error (named by file and line), the atomic import with the real frozen backbone, the feature
cache, the splits a config sees, and a demo-source recording cut into a source folder."""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from planllm_ros.cli import main as planllm
from planllm_ros.model.backbone import build_backbone
from training.datasets.base import DatasetError, ProcedureDataset
from training.episodes import load_episodes
from training.episodes.frames import typestore
from training.train.config import load_config
from training.train.splits import load_split

SIDE = 32
PER_STATE, SPACING = 3, 0.1  # frames per state and seconds between frames
STATE_S = PER_STATE * SPACING
CONTEXT = "0.1"
LABELS = ["open the box", "take the cup", "fill the cup", "close the box", "wipe the table"]
EPISODES = {  # name -> (task, split, labels of its steps)
    "ep-a": ("pack", "train", ["open the box", "take the cup", "fill the cup", "close the box"]),
    "ep-b": ("pack", "train", ["take the cup", "open the box", "fill the cup", "close the box"]),
    "ep-c": ("clean", "train", ["take the cup", "wipe the table", "fill the cup"]),
    "ep-d": ("pack", "test", ["open the box", "take the cup", "fill the cup", "close the box"]),
}


def states(name: str) -> list[np.ndarray]:
    """Distinct flat-coloured states of an episode: state k is the scene after step k."""
    rng = np.random.default_rng(sum(map(ord, name)))
    return [np.full((SIDE, SIDE, 3), rng.integers(0, 256, 3), dtype=np.uint8) for _ in range(len(EPISODES[name][2]) + 1)]


def boundary(k: int) -> float:
    """The time of state k's middle frame: where step k ends and step k + 1 starts."""
    return k * STATE_S + SPACING


def write_frames(folder: Path, images: list[np.ndarray]) -> None:
    folder.mkdir(parents=True)
    for k, image in enumerate(images):
        for j in range(PER_STATE):
            Image.fromarray(image).save(folder / f"{k * STATE_S + j * SPACING:.3f}.png")


def write_bag(folder: Path, images: list[np.ndarray], compressed: bool) -> None:
    """A rosbag2 of the states on /camera (header stamps from 100 s on), and a string topic."""
    from rosbags.rosbag2 import Writer

    from planllm_ros.tools.bag import BAG_VERSION

    types = typestore()
    Time, Header, String = (types.types[f"{t}"] for t in ("builtin_interfaces/msg/Time", "std_msgs/msg/Header",
                                                           "std_msgs/msg/String"))
    msgtype = f"sensor_msgs/msg/{'CompressedImage' if compressed else 'Image'}"
    with Writer(folder, version=BAG_VERSION) as writer:
        camera = writer.add_connection("/camera", msgtype, typestore=types)
        notes = writer.add_connection("/notes", "std_msgs/msg/String", typestore=types)
        for k, image in enumerate(images):
            for j in range(PER_STATE):
                ns = 100 * 10**9 + round((k * STATE_S + j * SPACING) * 1e9)
                header = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="cam")
                if compressed:
                    png = io.BytesIO()
                    Image.fromarray(image).save(png, format="PNG")
                    message = types.types[msgtype](header=header, format="png",
                                                   data=np.frombuffer(png.getvalue(), dtype=np.uint8))
                else:
                    message = types.types[msgtype](header=header, height=SIDE, width=SIDE, encoding="rgb8",
                                                   is_bigendian=0, step=SIDE * 3, data=image.reshape(-1))
                writer.write(camera, ns + 5_000_000, types.serialize_cdr(message, msgtype))
            writer.write(notes, 100 * 10**9 + k, types.serialize_cdr(String(data="note"), "std_msgs/msg/String"))


def write_source(root: Path) -> None:
    """ep-a: a bag of raw images; ep-c: a bag of PNG CompressedImages; ep-b, ep-d: frame folders.
    ep-b names its task in its steps file, the others in the manifest; ep-d is held out."""
    root.mkdir()
    (root / "labels.txt").write_text("# the vocabulary\n" + "\n".join(LABELS) + "\n\n")
    manifest = ["episode,task,split"]
    for name, (task, split, labels) in EPISODES.items():
        if name in ("ep-a", "ep-c"):
            write_bag(root / name, states(name), compressed=name == "ep-c")
        else:
            write_frames(root / name, states(name))
        in_file = name == "ep-b"
        rows = [f"{boundary(i):.3f},{boundary(i + 1):.3f},{label}" + (f",{task}" if in_file else "")
                for i, label in enumerate(labels)]
        header = "start_s,end_s,label" + (",task" if in_file else "")
        (root / f"{name}.steps.csv").write_text("\n".join([header, *rows]) + "\n")
        manifest.append(f"{name},{'' if in_file else task},{split}")
    (root / "episodes.csv").write_text("\n".join(manifest) + "\n")


def run_cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = planllm(["data", "episodes", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def import_source(capsys: pytest.CaptureFixture, source: Path, out: Path, cache: Path, *extra: str):
    return run_cli(capsys, "import", str(source), "--out", str(out), "--image-topic", "/camera", "--context", CONTEXT,
                   "--cache-dir", str(cache), *extra)


@dataclass
class Built:
    source: Path
    dataset: Path
    cache: Path
    import_output: tuple[int, str, str]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The source folder and its dataset, imported once for the module (tests copy what they change)."""
    root = tmp_path_factory.mktemp("episodes")
    write_source(root / "source")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = planllm(["data", "episodes", "import", str(root / "source"), "--out", str(root / "dataset"),
                        "--image-topic", "/camera", "--context", CONTEXT, "--cache-dir", str(root / "cache")])
    return Built(root / "source", root / "dataset", root / "cache", (code, out.getvalue(), err.getvalue()))


@pytest.fixture
def source(built: Built, tmp_path: Path) -> Path:
    shutil.copytree(built.source, tmp_path / "source")
    return tmp_path / "source"


def expected_states(dataset: ProcedureDataset) -> tuple[np.ndarray, np.ndarray]:
    """What each window's start and goal must be: the backbone's features of the state before
    its first step and after its last (every frame around a boundary shows that one state)."""
    firsts: Counter[str] = Counter()
    pairs = []
    for sample in dataset:
        first = firsts[sample.video]
        firsts[sample.video] += 1
        pairs.append((states(sample.video)[first], states(sample.video)[first + dataset.horizon]))
    net = build_backbone("mobilenet_v2", layer=13)
    with torch.inference_mode():
        start = net(torch.from_numpy(np.stack([p[0] for p in pairs]))).numpy()
        goal = net(torch.from_numpy(np.stack([p[1] for p in pairs]))).numpy()
    return start, goal


def test_import_serves_windows_whose_states_are_the_backbone_features(built: Built, capsys) -> None:
    code, out, err = built.import_output
    assert code == 0, err
    assert "imported 4 episodes (1 held out), 15 steps" in out and "(196, 96) float16" in out
    assert "(0 of 4 episodes from the feature cache)" in out
    assert "features (mobilenet_v2)" in err  # the progress bar
    dataset = built.dataset
    assert sorted(p.name for p in dataset.iterdir()) == ["dataset.json", "features", "labels.txt", "tasks.json"]
    assert json.loads((dataset / "tasks.json").read_text()) == {
        "pack": ["open the box", "take the cup", "fill the cup", "close the box"],
        "clean": ["take the cup", "wipe the table", "fill the cup"]}
    assert not [p for p in dataset.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left

    code, out, err = run_cli(capsys, "validate", str(built.source), "--image-topic", "/camera", "--context", CONTEXT)
    assert code == 0, err
    assert "4 episodes valid (1 held out), 0 with errors; 5 labels" in out
    assert re.search(r"ep-c +train +clean +3 steps +12 frames +1.1 s +32x32 +rosbag2 /camera", out), out
    assert re.search(r"ep-b +train +pack +4 steps +15 frames +1.4 s +32x32 +frames", out), out

    train, test = load_episodes(dataset, "train", 3), load_episodes(dataset, "test", 3)
    assert train.vocab.labels == tuple(LABELS) and train.vocab.tasks == ("clean", "pack")
    assert [s.video for s in train] == ["ep-a", "ep-a", "ep-b", "ep-b", "ep-c"] and [s.video for s in test] == ["ep-d"] * 2
    assert train.step_labels(train[2]) == ["take the cup", "open the box", "fill the cup"]
    assert [s.task for s in train] == [1, 1, 1, 1, 0]
    assert [d.text() for d in train.descriptions] == LABELS  # no descriptions.json: each step's label
    for dataset_split in (train, test):
        start, goal = expected_states(dataset_split)
        assert all(s.start.dtype == np.float16 and s.start.shape == (196, 96) for s in dataset_split)
        np.testing.assert_allclose(np.stack([s.start for s in dataset_split]).astype(np.float32), start, atol=2e-2, rtol=1e-2)
        np.testing.assert_allclose(np.stack([s.goal for s in dataset_split]).astype(np.float32), goal, atol=2e-2, rtol=1e-2)


def test_a_second_import_reads_the_cache_and_another_backbone_block_does_not(built: Built, tmp_path: Path,
                                                                              capsys) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(built.cache, cache)
    files = {p: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert len(files) == 4  # one per episode
    code, out, err = import_source(capsys, built.source, tmp_path / "again", cache)
    assert code == 0 and "(4 of 4 episodes from the feature cache)" in out
    assert "features (" not in err  # nothing went through the backbone
    assert {p: p.stat().st_mtime_ns for p in cache.iterdir()} == files
    code, out, _ = import_source(capsys, built.source, tmp_path / "block12", cache,
                                 "--set", "visual.layer=10", "--set", "visual.feature_dim=64")
    assert code == 0 and "layer 10" in out and "(196, 64) float16" in out
    assert len(list(cache.iterdir())) == 8


def test_splits_carve_whole_episodes_and_check_the_backbone(built: Built, tmp_path: Path, capsys) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(built.dataset, dataset)
    config = load_config("episodes-tiny", ["data.val_fraction=0.3"])
    config.data.root = str(dataset)
    train, val, test = (load_split(config.data, split, config.visual()) for split in ("train", "val", "test"))
    assert {s.video for s in train} | {s.video for s in val} == {"ep-a", "ep-b", "ep-c"}
    assert not {s.video for s in train} & {s.video for s in val}
    assert {s.video for s in test} == {"ep-d"}
    code, out, err = run_cli(capsys, "stats", str(dataset), "--set", "data.val_fraction=0.3")
    assert code == 0, err
    assert "5 labels, 2 tasks" in out and "nearest-neighbour SR" in out
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["train", "val", "test"]

    other = load_config("episodes-tiny", ["visual.layer=10", "visual.feature_dim=64"])
    other.data.root = str(dataset)
    with pytest.raises(DatasetError, match="re-import"):
        load_split(other.data, "train", other.visual())
    meta = json.loads((dataset / "dataset.json").read_text())
    for entry in meta["episodes"]:
        entry["split"] = "train"
    (dataset / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="no test episodes"):
        load_split(config.data, "test", config.visual())


def test_preview_shows_each_steps_first_and_last_frame(source: Path, tmp_path: Path, capsys) -> None:
    code, out, err = run_cli(capsys, "preview", str(source), "--episode", "ep-b", "--out", str(tmp_path / "b.png"),
                             "--context", CONTEXT)
    assert code == 0, err
    assert "ep-b (pack), 4 steps" in out
    sheet = np.asarray(Image.open(tmp_path / "b.png").convert("RGB"))
    images = states("ep-b")
    for step in range(4):  # row `step`: the start thumbnail shows state `step`, the end thumbnail state `step + 1`
        y = 2 * 8 + 16 + step * (120 + 8) + 60
        np.testing.assert_array_equal(sheet[y, 8 + 60], images[step][0, 0])
        np.testing.assert_array_equal(sheet[y, 8 + 120 + 8 + 60], images[step + 1][0, 0])


def rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new, 1))


def drop_frames(root: Path) -> None:
    """Every frame near the boundary between ep-b's first and second step."""
    for t in (boundary(1) - SPACING, boundary(1), boundary(1) + SPACING):
        (root / "ep-b" / f"{t:.3f}.png").unlink()


def resize_a_frame(root: Path) -> None:
    Image.fromarray(np.zeros((SIDE, SIDE + 8, 3), np.uint8)).save(root / "ep-d" / f"{SPACING:.3f}.png")


def break_bag(root: Path) -> None:
    (root / "ep-a" / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: [not, a, bag]}\n")


def step_row(k: int, label: str) -> str:
    return f"{boundary(k):.3f},{boundary(k + 1):.3f},{label}"


# fault -> (what breaks a valid source, what the error must say: file, line, fault)
FAULTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing frames": (drop_frames, r"ep-b\.steps\.csv: line 2: no frame within 0\.1 s of end_s 0\.4 in .*ep-b "
                                    r"\(the nearest is at 0\.[26]00 s\): frames are missing there"),
    "step outside the recording": (
        lambda r: rewrite(r / "ep-d.steps.csv", step_row(3, "close the box"), "1.000,9.000,close the box"),
        r"ep-d\.steps\.csv: line 5: end_s 9 is after the end of the recording .*ep-d \(1\.400 s from its first frame\)"),
    "overlapping steps": (lambda r: rewrite(r / "ep-d.steps.csv", step_row(2, "fill the cup"), "0.450,1.000,fill the cup"),
                          r"ep-d\.steps\.csv: line 4: step 'fill the cup' \(0\.45-1 s\) overlaps the step on line 3 "
                          r"\(0\.4-0\.7 s\)"),
    "unknown label": (lambda r: rewrite(r / "ep-c.steps.csv", "wipe the table", "wipe the tabel"),
                      r"ep-c\.steps\.csv: line 3: unknown label 'wipe the tabel': not in labels\.txt \(did you mean "
                      r"'wipe the table'\?\)"),
    "unreadable bag": (break_bag, r"ep-a: cannot read the bag"),
    "frames of mixed sizes": (resize_a_frame, r"ep-d/0\.100\.png: frame is 40x32, but the recording's first frame "
                                              r"\(.*ep-d/0\.000\.png\) is 32x32"),
    "end before start": (lambda r: rewrite(r / "ep-b.steps.csv", "0.100,0.400", "0.400,0.100"),
                         r"ep-b\.steps\.csv: line 2: end_s 0\.1 is not after start_s 0\.4"),
    "not a number": (lambda r: rewrite(r / "ep-b.steps.csv", "0.100,", "soon,"),
                     r"ep-b\.steps\.csv: line 2: start_s must be a number of seconds, got 'soon'"),
    "bad header": (lambda r: rewrite(r / "ep-c.steps.csv", "start_s,end_s,label", "start,end,label"),
                   r"ep-c\.steps\.csv: line 1: header must be start_s,end_s,label \(\+ optional task\)"),
    "two tasks in one file": (lambda r: rewrite(r / "ep-b.steps.csv", "close the box,pack", "close the box,unpack"),
                              r"ep-b\.steps\.csv: line 5: task 'unpack' differs from 'pack'"),
    "task differs from the manifest": (lambda r: rewrite(r / "episodes.csv", "ep-b,,train", "ep-b,clean,train"),
                                       r"episodes\.csv: line 3: task 'clean' of episode 'ep-b' differs from 'pack'"),
    "bad split": (lambda r: rewrite(r / "episodes.csv", "ep-d,pack,test", "ep-d,pack,holdout"),
                  r"episodes\.csv: line 5: split must be train or test"),
    "missing recording": (lambda r: shutil.rmtree(r / "ep-c"), r"episodes\.csv: line 4: recording .*ep-c not found"),
    "duplicate label": (lambda r: rewrite(r / "labels.txt", "wipe the table", "take the cup"),
                        r"labels\.txt: line 6: label 'take the cup' already on line 3"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_is_named_by_file_and_line_and_the_import_writes_nothing(
        fault: str, source: Path, built: Built, tmp_path: Path, capsys) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(built.dataset, dataset)
    before = {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()}
    mutate, message = FAULTS[fault]
    mutate(source)
    code, _, err = run_cli(capsys, "validate", str(source), "--image-topic", "/camera", "--context", CONTEXT)
    assert code != 0 and re.search(message, err), err
    code, _, err = import_source(capsys, source, dataset, tmp_path / "cache", "--overwrite")
    assert code == 2 and re.search(message, err), err
    assert {p: p.read_bytes() for p in dataset.rglob("*") if p.is_file()} == before  # the old dataset stands
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")] and not (tmp_path / "cache").exists()


def test_image_topic_faults(source: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "validate", str(source), "--image-topic", "/nothing", "--context", CONTEXT)
    assert code == 1 and re.search(r"ep-a: no image topic '/nothing' in the bag \(image topics: /camera\)", err), err
    code, out, err = run_cli(capsys, "validate", str(source), "--context", CONTEXT)  # one image topic: found
    assert code == 0, err
    assert "4 episodes valid" in out


def write_demo_recording(bag: Path, truth: str) -> None:
    """What `planllm ros record` keeps of `demo-source --play episodes`: ep-a, ep-b and ep-c played
    in turn (3 frames per state, the middle one at the step boundary), goals 3 steps ahead,
    truth messages; the recording missed ep-a's first frame."""
    from rosbags.rosbag2 import Writer

    from planllm_ros.tools.bag import BAG_VERSION

    types = typestore()
    Time, Header, String = (types.types[t] for t in ("builtin_interfaces/msg/Time", "std_msgs/msg/Header",
                                                      "std_msgs/msg/String"))
    ns = 1000 * 10**9

    def stamp(t: int) -> dict[str, int]:
        return {"sec": t // 10**9, "nanosec": t % 10**9}

    with Writer(bag, version=BAG_VERSION) as writer:
        camera, goal, notes = (writer.add_connection(topic, kind, typestore=types) for topic, kind in (
            ("/image", "sensor_msgs/msg/Image"), ("/goal_image", "sensor_msgs/msg/Image"), (truth, "std_msgs/msg/String")))

        def image(connection, rgb: np.ndarray, t: int) -> None:
            message = types.types["sensor_msgs/msg/Image"](
                header=Header(stamp=Time(**stamp(t)), frame_id="cam"), height=SIDE, width=SIDE, encoding="rgb8",
                is_bigendian=0, step=SIDE * 3, data=rgb.reshape(-1))
            writer.write(connection, t + 1000, types.serialize_cdr(message, "sensor_msgs/msg/Image"))

        def say(document: dict, t: int) -> None:
            writer.write(notes, t + 2000, types.serialize_cdr(String(data=json.dumps(document)), "std_msgs/msg/String"))

        for name in ("ep-a", "ep-b", "ep-c"):
            task, _, labels = EPISODES[name]
            first, middles, images = ns, [], states(name)
            for k, rgb in enumerate(images):
                for j in range(PER_STATE):
                    if (name, k, j) != ("ep-a", 0, 0):
                        image(camera, rgb, ns)
                    if j == 1:
                        middles.append(ns)
                        if k + 3 < len(images):
                            image(goal, images[k + 3], ns)
                            say({"kind": "goal", "task": task, "steps": labels[k:k + 3], "goal_stamp": stamp(ns)}, ns)
                    ns += round(SPACING * 1e9)
            steps = [{"label": label, "start": stamp(middles[i]), "end": stamp(middles[i + 1])}
                     for i, label in enumerate(labels)]
            say({"kind": "episode", "episode": name, "task": task, "camera_topic": "/image", "start": stamp(first),
                 "end": stamp(ns - round(SPACING * 1e9)), "steps": steps}, ns)


def test_a_demo_recording_is_cut_into_a_source_folder(tmp_path: Path, capsys) -> None:
    from rosbags.rosbag2 import Reader

    from planllm_ros.tools.cutter import cut_recording

    truth = "/planllm_demo_source/truth"
    write_demo_recording(tmp_path / "recording", truth)
    summary = cut_recording(tmp_path / "recording", tmp_path / "source", truth, held_out=1)
    assert summary == {"episodes": 2, "held_out": 1, "skipped": ["ep-a"], "labels": 5, "camera_topic": "/image"}
    source = tmp_path / "source"
    assert sorted(p.name for p in source.iterdir()) == ["ep-b", "ep-b.steps.csv", "ep-c", "ep-c.steps.csv",
                                                        "episodes.csv", "labels.txt"]
    assert (source / "episodes.csv").read_text().splitlines() == ["episode,task,split", "ep-b,pack,train",
                                                                   "ep-c,clean,test"]
    assert (source / "labels.txt").read_text().splitlines() == sorted(LABELS)
    rows = (source / "ep-c.steps.csv").read_text().splitlines()
    assert rows == ["start_s,end_s,label"] + [f"{boundary(i):.3f},{boundary(i + 1):.3f},{label}"
                                              for i, label in enumerate(EPISODES["ep-c"][2])]
    code, out, err = run_cli(capsys, "validate", str(source), "--image-topic", "/image", "--context", CONTEXT)
    assert code == 0 and "2 episodes valid (1 held out)" in out, err
    with Reader(source / "ep-c") as reader:
        kept = [(c.topic, json.loads(typestore().deserialize_cdr(raw, c.msgtype).data) if c.topic == truth else None)
                for c, _, raw in reader.messages()]
    assert sum(topic == "/image" for topic, _ in kept) == 4 * PER_STATE
    assert [d["kind"] for topic, d in kept if topic == truth] == ["goal"]  # one window of 3 in 3 steps; no announcement
