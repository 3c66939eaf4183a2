"""Who the arm is: the one publisher whose joint states count as *measured* (pure Python, no ROS).

The safety filter judges every command against the measured position, so whoever publishes ``/joint_states``
steers it: a second publisher claiming the arm is 0.2 rad further along makes a command 0.4 rad past the real
arm look like a 0.2 rad step. DDS alone (without SROS2, see docs/ros.md) does not authenticate publishers, but
every node can see who publishes a topic. This module decides, from what the ROS graph says and per message,
whether a joint state may be used:

- the arm's publisher is *pinned* (its endpoint GID, with its node name for reports) when it is the only
  publisher of the topic, at the first state that arrives; ``expected`` (``"<namespace>/<node_name>"``, the
  ``expected_state_publisher`` parameter) pins only a publisher of that node name, for setups that relay states
  (e.g. a ``joint_state_publisher`` merging sources) or that want to name the driver up front;
- **multiple** publishers (the pinned one and any other) is a fault: no message can be attributed (rclpy's
  ``MessageInfo`` in Jazzy carries no publisher GID), so every state is refused until the graph has shown only
  the pinned publisher again for ``settle_s``;
- a **changed** publisher (the pinned one gone, another in its place: a restarted driver or an impostor) is a
  latched fault: refused until :meth:`StateSource.reset` (an operator's explicit go-ahead), which re-pins;
- an **unexpected** publisher (``expected`` set, the sole publisher has another name) is refused, and reported,
  for as long as it lasts;
- a publication sequence number that goes back (one writer numbers its samples 1, 2, 3, ...) means a second
  writer the graph does not show yet: a fault like *multiple*.

While a fault lasts :meth:`StateSource.accept` returns False for every message; the nodes then drop the latest
state they held, so nothing measured before the fault outlives it either.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

UNKNOWN_NAME = "_NODE_NAME_UNKNOWN_"
UNKNOWN_NAMESPACE = "_NODE_NAMESPACE_UNKNOWN_"
"""What rmw reports for an endpoint whose node is not known yet (its node info has not arrived)."""

MULTIPLE = "multiple_publishers"
CHANGED = "publisher_changed"
UNEXPECTED = "unexpected_publisher"
SEQUENCE = "sequence_went_back"
FAULTS = (MULTIPLE, CHANGED, UNEXPECTED, SEQUENCE)
HOLD_REASON = "state_source"
"""The reason the bridge gives its safety filter's hold when the joint states' publisher comes into doubt."""


def node_fqn(namespace: str, name: str) -> str:
    """``"/ns/name"`` from a namespace and a node name (``"/name"`` in the root namespace)."""
    return f"{namespace.rstrip('/')}/{name}"


def normalize_fqn(name: str) -> str:
    """``"mock_arm"`` -> ``"/mock_arm"``: a node name given without its leading slash is in the root namespace."""
    name = name.strip()
    return name if not name or name.startswith("/") else "/" + name


@dataclass(frozen=True)
class Publisher:
    """One publisher of the joint-state topic, as the ROS graph lists it."""

    gid: bytes
    """The endpoint's GID (unique per publisher, new after every restart)."""
    node: str
    """Its node's fully qualified name (``/namespace/name``), ``""`` while unknown."""

    @classmethod
    def from_endpoint(cls, namespace: str, name: str, gid: Sequence[int] | bytes) -> Publisher:
        known = name != UNKNOWN_NAME and namespace != UNKNOWN_NAMESPACE
        return cls(bytes(gid), node_fqn(namespace, name) if known else "")

    def describe(self) -> str:
        return f"{self.node or '<unknown node>'} (gid {self.gid.hex()[:12]}..)"


@dataclass(frozen=True)
class Fault:
    kind: str
    """One of :data:`FAULTS`."""
    message: str
    latched: bool

    def __str__(self) -> str:
        return self.message


class StateSource:
    """Decides per joint-state message whether it comes from the arm (see the module docstring).

    Call :meth:`update_publishers` with the graph's current publishers of the topic (before :meth:`accept` for
    each message, and periodically so a fault is seen, and cleared, without messages), then :meth:`accept`.
    Thread-safe.
    """

    def __init__(self, topic: str = "/joint_states", expected: str = "", settle_s: float = 0.5) -> None:
        if settle_s < 0:
            raise ValueError("settle_s must be >= 0")
        self.topic = topic
        self.expected = normalize_fqn(expected)
        self.settle_s = settle_s
        self._lock = threading.Lock()
        self._publishers: tuple[Publisher, ...] = ()
        self._pinned: Publisher | None = None
        self._fault: Fault | None = None
        self._clean_since = math.inf
        """When the graph last became "only the pinned publisher" while a clearable fault lasted."""
        self._last_seq: int | None = None
        self.accepted = 0
        self.refused = 0
        """States refused: faults, and states that arrived before their publisher could be identified."""
        self.faults = 0
        """Transitions into a fault."""
        self.pins = 0

    # ------------------------------------------------------------------------------------------ reads
    @property
    def pinned(self) -> Publisher | None:
        return self._pinned

    @property
    def fault(self) -> Fault | None:
        """The fault in force (None: states from the pinned publisher are accepted)."""
        return self._fault

    @property
    def publishers(self) -> tuple[Publisher, ...]:
        return self._publishers

    def summary(self) -> dict[str, Any]:
        """For status topics: the pinned publisher, who publishes now, the fault and the counters."""
        with self._lock:
            return {
                "topic": self.topic,
                "expected": self.expected,
                "pinned": None if self._pinned is None else self._pinned.describe(),
                "publishers": [p.describe() for p in self._publishers],
                "fault": "" if self._fault is None else self._fault.kind,
                "fault_message": "" if self._fault is None else self._fault.message,
                "accepted": self.accepted,
                "refused": self.refused,
                "faults": self.faults,
                "pins": self.pins,
            }

    # ------------------------------------------------------------------------------------------ updates
    def update_publishers(self, publishers: Sequence[Publisher], now: float) -> None:
        """What the graph says now (all publishers of the topic)."""
        with self._lock:
            self._publishers = tuple(publishers)
            self._judge(now)

    def accept(self, now: float, sequence: int | None = None) -> bool:
        """May the message that just arrived be used as the arm's measured state?

        ``sequence``: its publication sequence number (``MessageInfo['publication_sequence_number']``), or None
        when the middleware does not give one. Call :meth:`update_publishers` first.
        """
        with self._lock:
            if self._pinned is None and self._fault is None:
                self._try_pin()
            ok = (
                self._fault is None
                and self._pinned is not None
                and len(self._publishers) == 1
                and self._publishers[0].gid == self._pinned.gid
            )
            if ok and sequence is not None:
                if self._last_seq is not None and sequence <= self._last_seq:
                    self._raise(
                        Fault(
                            SEQUENCE,
                            f"{self.topic}: publication sequence went back ({self._last_seq} -> "
                            f"{sequence}): a second writer the graph does not list yet",
                            latched=False,
                        ),
                        now,
                    )
                    ok = False
                else:
                    self._last_seq = sequence
            if ok:
                self.accepted += 1
            else:
                self.refused += 1
            return ok

    def reset(self, now: float) -> str:
        """The operator's go-ahead: forget the pinned publisher and the fault; the next sole publisher of the topic
        (of the expected name, if one is set) is pinned. Returns what happened, for the log."""
        with self._lock:
            old = self._pinned
            self._pinned, self._fault, self._last_seq, self._clean_since = None, None, None, math.inf
            self._try_pin()
            self._judge(now)
            new = "nobody yet" if self._pinned is None else self._pinned.describe()
            was = "nobody" if old is None else old.describe()
            return f"state source reset: was {was}, now {new}" + (f"; {self._fault}" if self._fault else "")

    # ------------------------------------------------------------------------------------------ internals
    def _try_pin(self) -> None:
        """Pin the sole publisher, if it qualifies (caller holds the lock, no fault in force)."""
        if len(self._publishers) != 1:
            return
        (only,) = self._publishers
        if self.expected and only.node != self.expected:
            return  # unknown name (wait) or another node (_judge reports it)
        self._pinned, self._last_seq = only, None
        self.pins += 1

    def _judge(self, now: float) -> None:
        pubs, pinned = self._publishers, self._pinned
        if self._fault is not None and self._fault.latched:
            return
        if pinned is None:
            if len(pubs) > 1:
                self._raise(
                    Fault(
                        MULTIPLE,
                        f"{len(pubs)} publishers claim {self.topic}: {', '.join(p.describe() for p in pubs)}",
                        latched=False,
                    ),
                    now,
                )
            elif len(pubs) == 1 and self.expected and pubs[0].node and pubs[0].node != self.expected:
                self._raise(
                    Fault(
                        UNEXPECTED,
                        f"{self.topic} is published by {pubs[0].describe()}, not by the "
                        f"expected {self.expected}",
                        latched=False,
                    ),
                    now,
                )
            elif self._fault is not None and self._settled(pubs == () or len(pubs) == 1, now):
                self._fault = None
            return
        others = [p for p in pubs if p.gid != pinned.gid]
        mine = [p for p in pubs if p.gid == pinned.gid]
        if mine and mine[0].node and not pinned.node:  # its node's name became known after it was pinned
            self._pinned = pinned = mine[0]
        if not mine and others:
            self._raise(
                Fault(
                    CHANGED,
                    f"the publisher of {self.topic} changed from {pinned.describe()} to "
                    f"{', '.join(p.describe() for p in others)}; holding until an operator resets",
                    latched=True,
                ),
                now,
            )
        elif others:
            self._raise(
                Fault(
                    MULTIPLE,
                    f"{len(pubs)} publishers claim {self.topic}: "
                    f"{', '.join(p.describe() for p in pubs)} (the arm is {pinned.describe()})",
                    latched=False,
                ),
                now,
            )
        elif self._fault is not None and self._settled(True, now):
            self._fault, self._last_seq = None, None

    def _settled(self, clean: bool, now: float) -> bool:
        """True once the graph has been clean for ``settle_s`` (states in flight from the other writer are gone)."""
        if not clean:
            self._clean_since = math.inf
            return False
        if math.isinf(self._clean_since):
            self._clean_since = now
        return now - self._clean_since >= self.settle_s

    def _raise(self, fault: Fault, now: float) -> None:
        self._clean_since = math.inf
        if self._fault is None or self._fault.kind != fault.kind:
            self.faults += 1
        elif self._fault.message == fault.message:
            return
        self._fault = fault
