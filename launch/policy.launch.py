"""Run a trained checkpoint on an arm through the safety bridge.

    ros2 launch ember policy.launch.py checkpoint:=outputs/train/run/checkpoints/last \
        robot:=panda rate:=10.0 use_mock:=true task:=PickPlace seed:=100000

With ``use_mock:=true`` and ``task:=<a sims task>`` the mock arm hosts that task's scene (objects, cameras, the
task's success check on /mock_arm/task, episodes reset on /mock_arm/reset, each episode's instruction published on
/ember/instruction): a sim-trained checkpoint meets the world it was trained in. ``task:=""`` gives the plain
mock scene, and ``instruction:=...`` the policy's initial instruction. With ``use_mock:=false`` the bridge
commands the real arm's joint_trajectory_controller on ``controller_topic`` (bring up the arm's ros2_control stack
first). The arm side (mock arm, bridge) is arm.launch.py, included with this file's arguments. Parameters:
config/policy.yaml, config/bridge.yaml, config/mock_arm.yaml; the launch arguments override them.
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

CONFIG_DIR = Path(__file__).resolve().parent / "config"


def _config(name: str) -> str:
    """A params file next to this launch file (installed together into share/ember/launch)."""
    return str(CONFIG_DIR / name)


def generate_launch_description() -> LaunchDescription:
    robot = LaunchConfiguration("robot")
    controller_topic = LaunchConfiguration("controller_topic")
    rate = LaunchConfiguration("rate")
    return LaunchDescription(
        [
            DeclareLaunchArgument("checkpoint", description="folder written by `ember train`"),
            DeclareLaunchArgument(
                "robot", default_value="panda", description="robot name from ember's robots/"
            ),
            DeclareLaunchArgument(
                "controller_topic",
                default_value="/joint_trajectory_controller/joint_trajectory",
                description="the arm controller's JointTrajectory topic",
            ),
            DeclareLaunchArgument(
                "rate", default_value="10.0", description="control rate in Hz (the dataset's fps)"
            ),
            DeclareLaunchArgument("use_mock", default_value="true", description="start the MuJoCo mock arm"),
            DeclareLaunchArgument(
                "task",
                default_value="",
                description="sims task the mock arm hosts (PickPlace, Lift, ...); empty: plain scene",
            ),
            DeclareLaunchArgument("split", default_value="train", description="the task's split"),
            DeclareLaunchArgument("seed", default_value="100000", description="seed of the first episode"),
            DeclareLaunchArgument(
                "instruction", default_value="", description="initial instruction for the policy"
            ),
            # the arm (mock or real) and the bridge: arm.launch.py, in a scoped group so that what it sets stays
            # there; every argument it declares that this file declares too is passed
            GroupAction(
                [
                    IncludeLaunchDescription(
                        PythonLaunchDescriptionSource(
                            PathJoinSubstitution([FindPackageShare("ember"), "launch", "arm.launch.py"])
                        ),
                        launch_arguments={
                            "robot": robot,
                            "controller_topic": controller_topic,
                            "rate": rate,
                            "use_mock": LaunchConfiguration("use_mock"),
                            "task": LaunchConfiguration("task"),
                            "split": LaunchConfiguration("split"),
                            "seed": LaunchConfiguration("seed"),
                            "checkpoint": LaunchConfiguration("checkpoint"),
                        }.items(),
                    )
                ]
            ),
            Node(
                package="ember",
                executable="ember-policy-node",
                name="ember_policy",
                output="screen",
                parameters=[
                    _config("policy.yaml"),
                    {
                        "checkpoint": LaunchConfiguration("checkpoint"),
                        "robot": robot,
                        "rate_hz": rate,
                        "task": LaunchConfiguration("instruction"),
                    },
                ],
            ),
        ]
    )
