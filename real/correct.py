"""``ember correct``: a terminal where an operator types language corrections while the robot runs.

Each line is published as a ``std_msgs/String`` on ``/ember/correction``: the policy node follows it for a few
seconds (``ember.real.language``) and the recorder stores it on the frame it arrived in (``ember.real.recorder_logic``). The
recorder timestamps corrections on arrival, so the message stays a plain string anyone can publish
(``ros2 topic pub --once /ember/correction std_msgs/String "data: move left"``).

Lines starting with ``/`` are commands::

    /task <text>   set the task instruction (latched on /ember/instruction)
    /next /discard /stop /start   recorder control (save and start a new episode, drop it, stop, start)
    /estop         engage the bridge's latching e-stop      /reset   release it (e-stop false, then reset)
    /help          this list                                 /quit    leave (so does Ctrl-D)
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from ember.real.recorder_params import CONTROL_COMMANDS
from ember.real.ros import (
    CORRECTION_TOPIC,
    ESTOP_RESET_TOPIC,
    ESTOP_TOPIC,
    INSTRUCTION_TOPIC,
    RECORDER_CONTROL_TOPIC,
    RECORDER_STATUS_TOPIC,
    require_rclpy,
    ros_env_warning,
)
from ember.verbs import Verb

HELP = __doc__.split("::", 1)[1].strip("\n") if __doc__ else ""


@dataclass
class CorrectConfig:
    """Fields of ``ember correct`` (``--task="stack the cubes"`` etc.)."""

    task: str = ""
    """If set, published as the task instruction before the first line is read."""
    correction_topic: str = CORRECTION_TOPIC
    instruction_topic: str = INSTRUCTION_TOPIC
    control_topic: str = RECORDER_CONTROL_TOPIC
    estop_topic: str = ESTOP_TOPIC
    estop_reset_topic: str = ESTOP_RESET_TOPIC
    wait_s: float = 10.0
    """Wait up to this long for nodes listening to corrections before reading the first line."""
    listeners: int = 0
    """Wait for this many listening nodes (the policy node and the recorder: 2); 0: the first one, then until
    no new one has appeared for 2 s."""
    prompt: bool = True
    """Show a prompt (off when input is piped)."""
    recorder_status_topic: str = RECORDER_STATUS_TOPIC
    ack_timeout_s: float = 3.0
    """Before a recorder command (``/next`` ...), wait up to this long for the recorder's status to count every
    correction sent so far: a reliable message delayed by a retransmission must not reach the recorder after the
    episode it belongs to was saved. 0 disables the wait."""


@dataclass
class CorrectResult:
    corrections: int = 0
    commands: dict[str, int] = field(default_factory=dict)


def run_correct(
    cfg: CorrectConfig, lines: Iterable[str] | None = None, out: TextIO | None = None
) -> CorrectResult:
    """Read lines (stdin by default) and publish them until ``/quit`` or end of input.

    Uses its own rclpy context, so it also works inside a process that already runs other nodes.
    """
    rclpy = require_rclpy()
    from std_msgs.msg import Bool, String

    from ember.real import ros

    out = out or sys.stdout
    source = lines if lines is not None else _stdin_lines(cfg.prompt and sys.stdin.isatty(), out)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("ember_correct", context=context)
    result = CorrectResult()
    try:
        warning = ros_env_warning()
        if warning:
            print(f"warning: {warning}", file=out)
        corrections = node.create_publisher(String, cfg.correction_topic, ros.qos_command())
        instruction = node.create_publisher(String, cfg.instruction_topic, ros.qos_latched())
        control = node.create_publisher(String, cfg.control_topic, ros.qos_command())
        estop = node.create_publisher(Bool, cfg.estop_topic, ros.qos_latched())
        reset = node.create_publisher(Bool, cfg.estop_reset_topic, ros.qos_command())
        recorder_counts: list[int] = []

        def on_recorder_status(msg: String) -> None:
            try:
                recorder_counts.append(int(json.loads(msg.data).get("corrections", 0)))
            except (ValueError, TypeError, AttributeError):
                pass

        node.create_subscription(String, cfg.recorder_status_topic, on_recorder_status, ros.qos_latched())
        _wait_for_subscribers(corrections, cfg.wait_s, count=cfg.listeners)
        print(
            f"ready: {corrections.get_subscription_count()} node(s) listening on {cfg.correction_topic}",
            file=out,
            flush=True,
        )
        if cfg.task:
            instruction.publish(String(data=cfg.task))
            print(f"task: {cfg.task}", file=out)
        for raw in source:
            line = raw.strip()
            if not line:
                continue
            if not line.startswith("/"):
                corrections.publish(String(data=line))
                result.corrections += 1
                print(f"correction sent: {line}", file=out, flush=True)
                continue
            verb, _, arg = line[1:].partition(" ")
            verb = verb.lower()
            if verb in ("quit", "exit", "q"):
                break
            result.commands[verb] = result.commands.get(verb, 0) + 1
            if verb == "task" and arg.strip():
                instruction.publish(String(data=arg.strip()))
                print(f"task: {arg.strip()}", file=out)
            elif verb in CONTROL_COMMANDS:
                _wait_for_subscribers(control, cfg.wait_s, settle_s=0.2)
                if result.corrections and cfg.ack_timeout_s > 0:
                    _wait_for_recorder(
                        node, context, recorder_counts, result.corrections, cfg.ack_timeout_s, out
                    )
                control.publish(String(data=verb))
                print(f"recorder: {verb}", file=out)
            elif verb == "estop":
                estop.publish(Bool(data=True))
                print("E-STOP sent", file=out)
            elif verb == "reset":
                estop.publish(Bool(data=False))
                time.sleep(0.2)  # let the bridge see the released e-stop topic before the reset request
                reset.publish(Bool(data=True))
                print("e-stop released and reset requested", file=out)
            else:
                print(HELP, file=out)
        time.sleep(0.3)  # reliable delivery of the last messages before the node goes away
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return result


def _wait_for_recorder(
    node: Any, context: Any, counts: list[int], sent: int, timeout: float, out: TextIO
) -> bool:
    """Spin until the recorder's status counts ``sent`` corrections (it publishes every 0.5 s) or ``timeout``."""
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + timeout
        while not (counts and counts[-1] >= sent) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.remove_node(node)
        executor.shutdown()
    if (
        counts and counts[-1] < sent
    ):  # a recorder is there but has not seen them all: the episode may miss one
        print(
            f"warning: the recorder has counted {counts[-1]} of {sent} corrections after {timeout:g} s",
            file=out,
            flush=True,
        )
    return bool(counts) and counts[-1] >= sent


def _wait_for_subscribers(publisher: Any, timeout: float, settle_s: float = 2.0, count: int = 0) -> bool:
    """Wait (at most ``timeout``) for ``count`` subscribers, or for one and then until no new one has appeared
    for ``settle_s``: nodes are discovered one by one, and a volatile message reaches only those matched."""
    end = time.monotonic() + timeout
    while publisher.get_subscription_count() < max(count, 1):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    if count:
        time.sleep(0.1)  # matched on our side; give the other side a moment too
        return True
    count, stable_since = publisher.get_subscription_count(), time.monotonic()
    while time.monotonic() - stable_since < settle_s and time.monotonic() < end:
        time.sleep(0.05)
        now_count = publisher.get_subscription_count()
        if now_count != count:
            count, stable_since = now_count, time.monotonic()
    return True


def _stdin_lines(prompt: bool, out: TextIO) -> Iterable[str]:
    if prompt:
        print("type a correction and press Enter (/help for commands, Ctrl-D to quit)", file=out)
    while True:
        if prompt:
            print("correction> ", end="", file=out, flush=True)
        line = sys.stdin.readline()
        if not line:
            return
        yield line


def _run_verb(cfg: CorrectConfig) -> int:
    run_correct(cfg)
    return 0


VERB = Verb(
    "correct",
    "type language corrections for a running policy / recorder (publishes std_msgs/String)",
    CorrectConfig,
    _run_verb,
)
"""``ember correct`` (registered through the ``ember.verbs`` entry point in pyproject.toml)."""


def main(args: list[str] | None = None) -> int:
    """Console script ``ember-correct [--task=TEXT] [--correction_topic=...]`` (same fields as ``ember correct``)."""
    from ember.config import apply_overrides

    cfg = apply_overrides(CorrectConfig(), list(sys.argv[1:] if args is None else args))
    try:
        run_correct(cfg)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
