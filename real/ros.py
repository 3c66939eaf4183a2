"""The one place that imports rclpy: lazy import with an actionable error, QoS profiles, message helpers and the
``main()`` runner every node's console script shares.

QoS choices (what ros2_control and camera drivers use, so the nodes interoperate with real stacks):

- sensors (``/joint_states``, images) are *subscribed* best-effort, depth 5: that matches both reliable and
  best-effort publishers, and a late sample is worth less than the next one;
- commands (actions, the controller topic, corrections) are reliable, depth 10: every command counts;
- instructions, the e-stop and status topics are reliable + transient-local, depth 1 ("latched"): a node that
  starts late still learns the current instruction, and a restarted bridge still sees an engaged e-stop.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ember.real.errors import RealError

CONTROLLER_TOPIC = "/joint_trajectory_controller/joint_trajectory"
"""ros2_control's joint_trajectory_controller listens here (controller named ``joint_trajectory_controller``)."""
JOINT_STATES_TOPIC = "/joint_states"
"""joint_state_broadcaster publishes here."""
CAMERA_PREFIX = "/cameras"
"""Camera ``<name>`` publishes ``<prefix>/<name>/image_raw`` and ``<prefix>/<name>/camera_info``."""
ACTION_TOPIC = "/ember/action"
INSTRUCTION_TOPIC = "/ember/instruction"
CORRECTION_TOPIC = "/ember/correction"
ESTOP_TOPIC = "/ember/estop"
ESTOP_RESET_TOPIC = "/ember/estop_reset"
RECORDER_CONTROL_TOPIC = "/ember/recorder/control"
RECORDER_STATUS_TOPIC = "/ember/recorder/status"


def image_topic(prefix: str, camera: str) -> str:
    return f"{prefix.rstrip('/')}/{camera}/image_raw"


def camera_info_topic(prefix: str, camera: str) -> str:
    return f"{prefix.rstrip('/')}/{camera}/camera_info"


def require_rclpy() -> Any:
    """Import rclpy or raise RealError saying how to install it."""
    try:
        import rclpy
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RealError(
            "rclpy is not installed: install the ROS 2 extras with `pip install -e '.[ros]'` (Python 3.10-3.14, "
            "x86_64) or source a ROS 2 Jazzy install before running the real/ nodes."
        ) from exc
    return rclpy


# --------------------------------------------------------------------------------------------------- QoS
def qos_sensor() -> Any:
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)


def qos_command() -> Any:
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)


def qos_latched() -> Any:
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(
        depth=1,
        history=HistoryPolicy.KEEP_LAST,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


# ---------------------------------------------------------------------------------------------- messages
def message_age_s(info: Any, max_age_s: float = 2.0) -> float:
    """Seconds since the publisher sent a message, from the ``MessageInfo`` rclpy gives a two-argument
    subscription callback (its ``source_timestamp``, wall clock). 0.0 when unknown or implausible (clocks of two
    machines that disagree by more than ``max_age_s``, or a stamp from the future): then receipt time is all we
    have. Why: a callback can run late (a busy executor); the sender's stamp says when the operator spoke."""
    try:
        sent = float(info["source_timestamp"]) / 1e9
    except (TypeError, KeyError, ValueError):
        return 0.0
    age = time.time() - sent
    return age if 0.0 <= age <= max_age_s else 0.0


def stamp_to_sec(stamp: Any) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def sec_to_stamp(t: float) -> Any:
    from builtin_interfaces.msg import Time

    sec = math.floor(t)
    return Time(sec=int(sec), nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


def duration_msg(seconds: float) -> Any:
    from builtin_interfaces.msg import Duration

    sec = math.floor(seconds)
    return Duration(sec=int(sec), nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


def duration_to_sec(d: Any) -> float:
    return d.sec + d.nanosec * 1e-9


_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


def image_to_numpy(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/Image`` as uint8 HxWx3 RGB (rgb8, bgr8, rgba8, bgra8 and mono8 accepted)."""
    channels = _CHANNELS.get(msg.encoding)
    if channels is None:
        raise RealError(
            f"image encoding '{msg.encoding}' is not supported; publish one of {sorted(_CHANNELS)}."
        )
    flat = np.frombuffer(msg.data, dtype=np.uint8)
    rows = flat.reshape(msg.height, msg.step)[:, : msg.width * channels]
    img = rows.reshape(msg.height, msg.width, channels)
    if msg.encoding.startswith("bgr"):
        img = img[..., 2::-1]
    elif channels == 4:
        img = img[..., :3]
    elif channels == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img)


def numpy_to_image(img: np.ndarray, stamp: Any, frame_id: str) -> Any:
    from sensor_msgs.msg import Image

    h, w = img.shape[:2]
    msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3)
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.data = np.ascontiguousarray(img, dtype=np.uint8).tobytes()
    return msg


def camera_info(width: int, height: int, fovy_deg: float, stamp: Any, frame_id: str) -> Any:
    """Pinhole ``CameraInfo`` of an ideal camera with vertical field of view ``fovy_deg`` (square pixels)."""
    from sensor_msgs.msg import CameraInfo

    f = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    msg = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.d = [0.0] * 5
    msg.k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def joint_trajectory(names: Sequence[str], target: np.ndarray, time_from_start: float) -> Any:
    """A one-point ``JointTrajectory`` reaching ``target`` after ``time_from_start`` seconds.

    The header stamp is zero, which joint_trajectory_controller reads as "start now".
    """
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory()
    msg.joint_names = list(names)
    point = JointTrajectoryPoint()
    point.positions = [float(v) for v in target]
    point.time_from_start = duration_msg(time_from_start)
    msg.points = [point]
    return msg


# ------------------------------------------------------------------------------------------------- running
def ros_env_warning() -> str | None:
    """A warning when discovery would leave the machine (ROS_AUTOMATIC_DISCOVERY_RANGE unset)."""
    if not os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") and not os.environ.get("ROS_LOCALHOST_ONLY"):
        return (
            "ROS_AUTOMATIC_DISCOVERY_RANGE is not set: discovery also uses the network. Set it to LOCALHOST "
            "for a single-machine setup (and pick a ROS_DOMAIN_ID)."
        )
    return None


def sros2_mode() -> str:
    """SROS2 as the environment asks for it, read as rcl reads it: ``enforce`` (``ROS_SECURITY_ENABLE=true`` and
    ``ROS_SECURITY_STRATEGY=Enforce``), ``permissive`` (enabled, any other strategy) or ``off``. Asked for is not
    in force: under ``permissive`` a node without an enclave runs unsecured (docs/ros.md)."""
    if os.environ.get("ROS_SECURITY_ENABLE") != "true":
        return "off"
    return "enforce" if os.environ.get("ROS_SECURITY_STRATEGY") == "Enforce" else "permissive"


def make_executor(kind: str = "single") -> Any:
    """``single`` (SingleThreadedExecutor), ``multi`` (2 threads: a slow callback, e.g. saving an episode, does
    not delay the others) or ``events`` (rclpy's C++ EventsExecutor: about half the per-message overhead, which
    is what the bridge's command path needs; drive it with ``spin_once``, its ``spin()`` ran nothing here)."""
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    if kind == "multi":
        return MultiThreadedExecutor(num_threads=2)
    if kind == "single":
        return SingleThreadedExecutor()
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    raise RealError(f"unknown executor '{kind}'; use single, multi or events.")


def set_realtime_priority(priority: int) -> str | None:
    """SCHED_FIFO at ``priority`` for every thread of this process (the DDS threads that deliver messages were
    started with the node, before its parameters were known); returns why it failed, None on success."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
        for tid in tids:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as exc:
        return f"could not set SCHED_FIFO priority {priority} ({exc}); running with normal priority"
    return None


LOCK_MEMORY_ENV = "EMBER_LOCK_MEMORY"
"""Set to 1 to lock each node's memory (``mlockall``) once it is built, as ros2_control's realtime_tools do."""


def lock_memory() -> str | None:
    """``mlockall(MCL_CURRENT | MCL_FUTURE)``: every page of this process stays resident and new mappings are
    faulted in when made, so a control callback never waits on a page fault (on a VM, a first touch of a page
    the host reclaimed can stall a thread for tens of ms). Returns why it failed, None on success."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.mlockall(1 | 2) != 0:  # MCL_CURRENT | MCL_FUTURE
            return f"could not lock memory (mlockall: {os.strerror(ctypes.get_errno())}); it may be paged"
    except (OSError, AttributeError) as exc:
        return f"could not lock memory ({exc}); it may be paged"
    return None


def run_node(
    make_node: Callable[[], Any], args: Sequence[str] | None = None, executor: str = "single"
) -> int:
    """Init rclpy with ``args`` (``--ros-args ...`` included), build the node, spin it until Ctrl-C / SIGTERM,
    then call the node's ``close()`` (if any) and shut down. The return value is the process exit code."""
    rclpy = require_rclpy()
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=list(sys.argv if args is None else args))
    node = None
    try:
        node = make_node()
        warning = ros_env_warning()
        if warning:
            node.get_logger().warning(warning)
        gc.collect()
        gc.freeze()  # startup objects (models, messages types) never need scanning again: shorter GC pauses
        if os.environ.get(LOCK_MEMORY_ENV, "") not in ("", "0"):
            failed = lock_memory()
            if failed:
                node.get_logger().warning(failed)
        spinner = make_executor(executor)
        spinner.add_node(node)
        while rclpy.ok():  # spin_once, not spin(): the EventsExecutor's spin() ran nothing here (rclpy 7.1.6)
            spinner.spin_once(timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RealError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception:
        if not rclpy.ok():  # Ctrl-C / SIGTERM while the node was still starting (e.g. loading a checkpoint)
            return 0
        raise
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
