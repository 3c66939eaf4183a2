"""Start the MuJoCo mock arm: ``ros2 launch ember mock_arm.launch.py [robot:=panda]``.

It publishes /joint_states, /cameras/<cam>/image_raw + camera_info and follows JointTrajectory messages on the
controller topic, like a ros2_control arm with a joint_trajectory_controller. Parameters: config/mock_arm.yaml.
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

CONFIG_DIR = Path(__file__).resolve().parent / "config"


def _config(name: str) -> str:
    """A params file next to this launch file (installed together into share/ember/launch)."""
    return str(CONFIG_DIR / name)


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "robot", default_value="panda", description="robot name from ember's robots/"
            ),
            DeclareLaunchArgument(
                "controller_topic",
                default_value="/joint_trajectory_controller/joint_trajectory",
                description="JointTrajectory topic the mock controller follows",
            ),
            Node(
                package="ember",
                executable="ember-mock-arm",
                name="mock_arm",
                output="screen",
                parameters=[
                    _config("mock_arm.yaml"),
                    {
                        "robot": LaunchConfiguration("robot"),
                        "controller_topic": LaunchConfiguration("controller_topic"),
                    },
                ],
            ),
        ]
    )
