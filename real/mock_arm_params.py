"""Parameters of ``ember-mock-arm`` (:class:`MockArmConfig`, its ROS parameters) and its node name.

The rclpy node is ``ember.real.nodes.mock_arm_node`` (what the mock arm publishes and why), its ROS-free physics
and cameras ``ember.real.mock_arm_logic``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ember.real.ros import CAMERA_PREFIX, CONTROLLER_TOPIC, JOINT_STATES_TOPIC

NODE_NAME = "mock_arm"


@dataclass
class MockArmConfig:
    """Parameters of ``ember-mock-arm`` (ROS parameters of the same names)."""

    robot: str = "panda"
    physics_hz: float = 500.0
    """MuJoCo steps per second of wall time (the model's timestep is 1/physics_hz)."""
    state_rate_hz: float = 100.0
    """JointState publishing rate (joint_state_broadcaster's ``publish_rate``)."""
    camera_rate_hz: float = 10.0
    cameras: tuple[str, ...] = ("front",)
    """Cameras to render, from ``ember.real.scene.CAMERAS`` (empty: no images)."""
    image_width: int = 128
    image_height: int = 96
    checkpoint: str = ""
    """A checkpoint folder: publish the cameras it reads, at the image size it was trained at (replaces
    ``cameras``, ``image_width`` and ``image_height``), so the policy node never waits for an unrendered camera.
    ``policy.launch.py`` passes its ``checkpoint`` here. Empty: ``cameras`` as given."""
    joint_states_topic: str = JOINT_STATES_TOPIC
    controller_topic: str = CONTROLLER_TOPIC
    camera_topic_prefix: str = CAMERA_PREFIX
    stats_topic: str = "/mock_arm/stats"
    inject_topic: str = "/mock_arm/inject"
    initial_positions: tuple[float, ...] = ()
    """Start pose in state order (arm + gripper); empty: the robot's home pose."""
    reject_unsafe: bool = True
    """Refuse commands the audit finds unsafe (as a real arm's reflexes would) instead of executing them."""
    audit_max_step: float = 0.3
    """Arm-side audit: largest allowed jump of a command's first point from the measured position."""
    frame_id: str = "base_link"
    publish_robot_description: bool = True
    task: str = ""
    """Host a sims tabletop task (``PickPlace``, ``Lift``, ...): its scene, objects and cameras replace the plain
    table (``ember.real.task_scene``), episodes start on ``reset_topic``, the task's success check goes to ``task_topic``.
    Cameras are then the task's (``front``, ``side``, ``wrist``, ...); use the training image size for width and
    height. Empty: the plain scene of ``ember.real.scene``."""
    split: str = "train"
    """The task's split (``train``, ``heldout_goal``, ``heldout_object``, ``heldout_scene``)."""
    seed: int = 0
    """Seed of the first episode (episode layouts are those ``ember eval`` gives the same seeds)."""
    reset_topic: str = "/mock_arm/reset"
    """``std_msgs/String``: a seed (``"17"``) starts that episode, an empty string the next seed."""
    task_topic: str = "/mock_arm/task"
    """Latched JSON: task, split, seed, episode, instruction, is_success (now), succeeded (ever this episode),
    goal_error and the task's other metrics; 10 Hz and at every reset."""
    instruction_topic: str = "/ember/instruction"
    """Where each episode's instruction is published (latched), as an operator would, for the policy node."""

    def __post_init__(self) -> None:
        for name in ("physics_hz", "state_rate_hz", "camera_rate_hz"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if self.image_width % 2 or self.image_height % 2 or min(self.image_width, self.image_height) < 8:
            raise ValueError(
                "image_width/height must be even and at least 8 (video encoders need even sizes)"
            )
