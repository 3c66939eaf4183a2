"""rosbag2 -> LeRobot v3, driven by a small YAML mapping (read with the ``rosbags`` library, no ROS).

One bag (a folder with ``metadata.yaml``) becomes one episode; a folder of bags becomes one
episode per bag, in name order. Topics are sampled on a fixed ``fps`` grid by zero-order hold
(each frame takes the latest message at or before its time), from the first instant every mapped
observation/action topic has spoken to the last instant all of them still do. Only the messages
a frame actually uses are deserialized and decoded, so a 30 Hz camera imported at 10 fps costs a
third of its decode time.

Mapping file (every key but ``topics`` optional)::

    fps: 10
    task: "pick up the cube"        # default episode task
    robot_type: ur5e
    use_videos: true
    stamp: header                   # header (msg.header.stamp when set) | bag (receive time)
    action_from_state: false        # no action topic: action(t) = observation.state(t + 1)
    topics:
      /joint_states:   {key: observation.state, field: position, joints: [shoulder, elbow, wrist]}
      /camera/color:   {key: observation.images.front}        # rgb8/bgr8/mono8/rgba8/bgra8
      /camera/depth:   {key: observation.depth.front}         # 16UC1 (mm) or 32FC1 (m)
      /arm/joint_trajectory: {key: action, point: first}      # trajectory_msgs/JointTrajectory
      /task:           {key: task}                            # std_msgs/String: the episode's task
      /correction:     {key: language_events, style: interjection}
      /motion:         {key: language_persistent, style: motion}
      /note:           {key: notes.operator}                  # a per-frame string column

``type`` (joint_state | image | compressed_image | joint_trajectory | string) is taken from the
bag's message type when omitted.
"""

from __future__ import annotations

import bisect
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ember.data.errors import DatasetError
from ember.data.features import DEPTH_PREFIX
from ember.data.importers.common import ImportResult, camera_feature, require
from ember.data.language import LANGUAGE_COLUMNS, LanguageRow
from ember.data.writer import DatasetWriter

MSG_TYPES = {
    "sensor_msgs/msg/JointState": "joint_state",
    "sensor_msgs/msg/Image": "image",
    "sensor_msgs/msg/CompressedImage": "compressed_image",
    "trajectory_msgs/msg/JointTrajectory": "joint_trajectory",
    "std_msgs/msg/String": "string",
}
NUMERIC_TYPES = ("joint_state", "joint_trajectory", "image", "compressed_image")


@dataclass
class TopicMap:
    topic: str
    key: str
    type: str = ""
    field: str = "position"
    joints: list[str] | None = None
    point: str = "first"
    style: str | None = None
    role: str | None = None


@dataclass
class Rosbag2Mapping:
    topics: list[TopicMap]
    fps: int = 10
    task: str = "rosbag2 episode"
    robot_type: str | None = None
    use_videos: bool = True
    stamp: str = "header"
    action_from_state: bool = False
    video_codec: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Rosbag2Mapping:
        import yaml

        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DatasetError(f"cannot read the rosbag2 mapping {path}: {exc}") from exc
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "mapping") -> Rosbag2Mapping:
        topics = raw.get("topics")
        if not isinstance(topics, dict) or not topics:
            raise DatasetError(f"{where}: needs 'topics: {{/topic: {{key: ...}}}}' with at least one topic.")
        maps = []
        for topic, spec in topics.items():
            spec = {"key": spec} if isinstance(spec, str) else dict(spec or {})
            if "key" not in spec:
                raise DatasetError(f"{where}: topic {topic} needs a 'key' (e.g. observation.state).")
            unknown = set(spec) - {"key", "type", "field", "joints", "point", "style", "role"}
            if unknown:
                raise DatasetError(f"{where}: topic {topic} has unknown fields {sorted(unknown)}.")
            maps.append(TopicMap(topic=topic, **spec))
        known = {
            "topics",
            "fps",
            "task",
            "robot_type",
            "use_videos",
            "stamp",
            "action_from_state",
            "video_codec",
        }
        unknown = set(raw) - known
        if unknown:
            raise DatasetError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}.")
        if raw.get("stamp", "header") not in ("header", "bag"):
            raise DatasetError(f"{where}: stamp must be 'header' or 'bag'.")
        return cls(
            topics=maps,
            fps=int(raw.get("fps", 10)),
            task=str(raw.get("task", "rosbag2 episode")),
            robot_type=raw.get("robot_type"),
            use_videos=bool(raw.get("use_videos", True)),
            stamp=raw.get("stamp", "header"),
            action_from_state=bool(raw.get("action_from_state", False)),
            video_codec=raw.get("video_codec"),
        )


@dataclass
class _Stream:
    """Raw (undeserialized) messages of one topic, sorted by time."""

    spec: TopicMap
    msgtype: str
    times: list[float] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)


def _bags(source: Path) -> list[Path]:
    if (source / "metadata.yaml").is_file():
        return [source]
    bags = sorted(p for p in source.iterdir() if (p / "metadata.yaml").is_file()) if source.is_dir() else []
    if not bags:
        raise DatasetError(f"{source} is neither a rosbag2 folder (with metadata.yaml) nor a folder of them.")
    return bags


def _decode_image(msg: Any, kind: str, key: str) -> np.ndarray:
    if kind == "compressed_image":
        from PIL import Image

        img = Image.open(io.BytesIO(bytes(msg.data)))
        if key.startswith(DEPTH_PREFIX):
            return np.asarray(img)
        return np.asarray(img.convert("RGB"))
    enc = msg.encoding.lower()
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    buf = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(h, step)
    big = bool(getattr(msg, "is_bigendian", 0))
    if enc in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8uc1", "8uc3"):
        ch = {"rgb8": 3, "bgr8": 3, "8uc3": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8uc1": 1}[enc]
        px = buf[:, : w * ch].reshape(h, w, ch)
        if ch == 1:
            return np.repeat(px, 3, axis=2)
        if enc.startswith("bgr"):
            px = px[..., [2, 1, 0]]
        return np.ascontiguousarray(px[..., :3])
    if enc in ("16uc1", "mono16"):
        return buf[:, : w * 2].copy().view(">u2" if big else "<u2").reshape(h, w).astype(np.uint16)
    if enc == "32fc1":
        return buf[:, : w * 4].copy().view(">f4" if big else "<f4").reshape(h, w).astype(np.float32)
    raise DatasetError(
        f"image encoding {msg.encoding!r} on {key} is not supported (rgb8, bgr8, mono8, 16UC1, 32FC1...)."
    )


def _select(names: list[str], values: Any, wanted: list[str] | None, topic: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if wanted is None:
        return arr
    pos = {n: i for i, n in enumerate(names)}
    missing = [j for j in wanted if j not in pos]
    if missing:
        raise DatasetError(f"{topic}: joints {missing} are not in the message (it has {names}).")
    return arr[[pos[j] for j in wanted]]


class _Episode:
    def __init__(self, bag: Path, mapping: Rosbag2Mapping) -> None:
        rosbag2 = require("rosbags.rosbag2", "rosbags", "importing rosbag2")
        typesys = require("rosbags.typesys", "rosbags", "importing rosbag2")
        self.bag, self.mapping = bag, mapping
        self.store = typesys.get_typestore(typesys.Stores.ROS2_HUMBLE)
        self.streams: dict[str, _Stream] = {}
        with rosbag2.Reader(bag) as reader:
            conns = {c.topic: c for c in reader.connections}
            for spec in mapping.topics:
                if spec.topic not in conns:
                    raise DatasetError(
                        f"{bag}: topic {spec.topic} is not in the bag (it has {sorted(conns)})."
                    )
                msgtype = conns[spec.topic].msgtype
                kind = spec.type or MSG_TYPES.get(msgtype, "")
                if kind not in MSG_TYPES.values():
                    raise DatasetError(
                        f"{bag}: {spec.topic} has type {msgtype}; supported: {sorted(MSG_TYPES)}."
                    )
                spec.type = kind
                self.streams[spec.topic] = _Stream(spec, msgtype)
            wanted = [conns[t] for t in self.streams]
            for conn, stamp, raw in reader.messages(connections=wanted):
                s = self.streams[conn.topic]
                t = stamp * 1e-9
                if mapping.stamp == "header" and s.spec.type != "string":
                    t = self._header_time(s, raw) or t
                s.times.append(t)
                s.raw.append(bytes(raw))
        for s in self.streams.values():
            order = np.argsort(np.asarray(s.times), kind="stable")
            s.times = [s.times[i] for i in order]
            s.raw = [s.raw[i] for i in order]

    def _header_time(self, s: _Stream, raw: bytes) -> float | None:
        msg = self.store.deserialize_cdr(raw, s.msgtype)
        header = getattr(msg, "header", None)
        if header is None:
            return None
        t = header.stamp.sec + header.stamp.nanosec * 1e-9
        return t if t > 0 else None

    def msg(self, s: _Stream, i: int) -> Any:
        return self.store.deserialize_cdr(s.raw[i], s.msgtype)

    def value(self, s: _Stream, i: int) -> Any:
        spec, msg = s.spec, self.msg(s, i)
        if spec.type == "joint_state":
            return _select(list(msg.name), getattr(msg, spec.field), spec.joints, spec.topic)
        if spec.type == "joint_trajectory":
            if not len(msg.points):
                raise DatasetError(f"{self.bag}: a JointTrajectory on {spec.topic} has no points.")
            point = msg.points[0] if spec.point == "first" else msg.points[-1]
            return _select(list(msg.joint_names), point.positions, spec.joints, spec.topic)
        if spec.type in ("image", "compressed_image"):
            return _decode_image(msg, spec.type, spec.key)
        return str(msg.data)


def _frame_times(ep: _Episode, fps: int) -> np.ndarray:
    required = [s for s in ep.streams.values() if s.spec.type in NUMERIC_TYPES]
    if not required:
        raise DatasetError("the mapping has no joint-state, trajectory or image topic to make frames from.")
    empty = [s.spec.topic for s in required if not s.times]
    if empty:
        raise DatasetError(f"{ep.bag}: topic(s) {empty} have no messages.")
    start = max(s.times[0] for s in required)
    end = min(s.times[-1] for s in required)
    if end < start:
        raise DatasetError(f"{ep.bag}: the mapped topics never overlap in time; nothing to import.")
    n = int(np.floor((end - start) * fps + 1e-9)) + 1
    return start + np.arange(n) / fps


def _held(times: list[float], t: float) -> int:
    """Index of the latest message at or before ``t`` (-1 if none yet)."""
    return bisect.bisect_right(times, t + 1e-9) - 1


def import_rosbag2(
    source: str | Path, root: str | Path, mapping: Rosbag2Mapping | str | Path | dict[str, Any]
) -> ImportResult:
    """Convert the bag(s) at ``source`` into a new dataset at ``root`` following ``mapping``."""
    t_start = time.perf_counter()
    if isinstance(mapping, str | Path):
        mapping = Rosbag2Mapping.from_yaml(mapping)
    elif isinstance(mapping, dict):
        mapping = Rosbag2Mapping.from_dict(mapping)
    keys = [m.key for m in mapping.topics]
    dup = {k for k in keys if keys.count(k) > 1 and k not in LANGUAGE_COLUMNS}
    if dup:
        raise DatasetError(f"keys {sorted(dup)} are mapped from more than one topic.")
    if "action" not in keys and not mapping.action_from_state:
        raise DatasetError(
            "no topic is mapped to 'action'; map a JointTrajectory/JointState command topic to it, or set "
            "action_from_state: true (action(t) = observation.state(t+1))."
        )
    if mapping.action_from_state and "observation.state" not in keys:
        raise DatasetError("action_from_state needs a topic mapped to observation.state.")
    bags = _bags(Path(source))
    writer: DatasetWriter | None = None
    frames = 0
    fps = mapping.fps
    try:
        for bag in bags:
            ep = _Episode(bag, mapping)
            times = _frame_times(ep, fps)
            t0 = times[0]
            cols: dict[str, list[Any]] = {}
            lang: list[tuple[LanguageRow, float]] = []
            task_stream = None
            for s in ep.streams.values():
                key = s.spec.key
                if key == "task":
                    task_stream = s
                    continue
                if key in LANGUAGE_COLUMNS:
                    style = s.spec.style or ("interjection" if key == "language_events" else "subtask")
                    role = s.spec.role or ("assistant" if style == "motion" else "user")
                    persistent = key == "language_persistent"
                    for i, t in enumerate(s.times):
                        if t > times[-1] + 1e-9 or (t < t0 - 1e-9 and not persistent):
                            continue  # events outside the episode have no frame to sit on
                        lang.append((LanguageRow(role, ep.value(s, i), style), max(0.0, float(t - t0))))
                    continue
                held = [_held(s.times, t) for t in times]
                cache: dict[int, Any] = {}
                values = []
                for i in held:
                    if i < 0:
                        values.append("" if s.spec.type == "string" else None)
                        continue
                    if i not in cache:
                        cache[i] = ep.value(s, i)
                    values.append(cache[i])
                cols[key] = values
            if mapping.action_from_state:
                state = cols["observation.state"]
                cols["action"] = [*state[1:], state[-1]]
            tasks = [mapping.task] * len(times)
            if task_stream is not None:
                for f, t in enumerate(times):
                    i = _held(task_stream.times, t)
                    if i >= 0:
                        tasks[f] = ep.value(task_stream, i) or mapping.task
            if writer is None:
                writer = _create_writer(root, mapping, cols, any(k in LANGUAGE_COLUMNS for k in keys))
            for row, t in lang:
                writer.add_language(row, timestamp=t)
            for f in range(len(times)):
                writer.add_frame({**{k: v[f] for k, v in cols.items()}, "task": tasks[f]})
            writer.save_episode()
            frames += len(times)
    finally:
        if writer is not None:
            writer.finalize()
    return ImportResult(Path(root), len(bags), frames, time.perf_counter() - t_start)


def _create_writer(
    root: str | Path, mapping: Rosbag2Mapping, cols: dict[str, list[Any]], language: bool
) -> DatasetWriter:
    features: dict[str, dict[str, Any]] = {}
    for key, values in cols.items():
        first = values[0]
        if first is None:
            raise DatasetError(f"{key}: no message before the first frame.")
        if isinstance(first, str):
            features[key] = {"dtype": "string", "shape": [1], "names": None}
        elif key.startswith(DEPTH_PREFIX):
            arr = np.asarray(first)
            features[key] = {
                "dtype": "float32" if arr.dtype.kind == "f" else "uint16",
                "shape": list(arr.shape[:2]),
            }
        elif np.asarray(first).ndim == 3:
            features[key] = camera_feature(np.asarray(first).shape, mapping.use_videos)
        else:
            names = next((m.joints for m in mapping.topics if m.key == key and m.joints), None)
            features[key] = {"dtype": "float32", "shape": [len(first)], "names": names}
    if mapping.action_from_state:
        features["action"] = dict(features["observation.state"])
    return DatasetWriter.create(root, fps=mapping.fps, features=features, robot_type=mapping.robot_type,
                                use_videos=mapping.use_videos, video_codec=mapping.video_codec,
                                language=language)  # fmt: skip
