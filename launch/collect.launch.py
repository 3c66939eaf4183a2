"""Collect language-corrected demonstrations (Yell At Your Robot / RT-H style).

    ros2 launch ember collect.launch.py root:=data/corrections task:="put the cube in the bowl" \
        checkpoint:=outputs/train/run/checkpoints/last use_mock:=true
    # in another terminal, type corrections while the robot runs:
    ember correct          # or: ros2 run ember ember-correct

The recorder stores observations, the command sent to the arm (the action), the active instruction and each
correction with its time, episode by episode. With ``checkpoint`` empty no policy runs (teleoperate through the
bridge's /ember/action or the controller directly). Parameters: config/*.yaml; the arguments override them.
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node

CONFIG_DIR = Path(__file__).resolve().parent / "config"


def _config(name: str) -> str:
    """A params file next to this launch file (installed together into share/ember/launch)."""
    return str(CONFIG_DIR / name)


def generate_launch_description() -> LaunchDescription:
    robot = LaunchConfiguration("robot")
    controller_topic = LaunchConfiguration("controller_topic")
    rate = LaunchConfiguration("rate")
    task = LaunchConfiguration("task")
    checkpoint = LaunchConfiguration("checkpoint")
    return LaunchDescription(
        [
            DeclareLaunchArgument("root", description="dataset folder to create"),
            DeclareLaunchArgument("task", default_value="", description="the task instruction"),
            DeclareLaunchArgument(
                "checkpoint", default_value="", description="policy to run while collecting"
            ),
            DeclareLaunchArgument(
                "robot", default_value="panda", description="robot name from ember's robots/"
            ),
            DeclareLaunchArgument(
                "controller_topic",
                default_value="/joint_trajectory_controller/joint_trajectory",
                description="the arm controller's JointTrajectory topic",
            ),
            DeclareLaunchArgument("rate", default_value="10.0", description="control rate in Hz"),
            DeclareLaunchArgument("fps", default_value="10", description="recording frame rate"),
            DeclareLaunchArgument("use_mock", default_value="true", description="start the MuJoCo mock arm"),
            Node(
                package="ember",
                executable="ember-mock-arm",
                name="mock_arm",
                output="screen",
                condition=IfCondition(LaunchConfiguration("use_mock")),
                parameters=[_config("mock_arm.yaml"), {"robot": robot, "controller_topic": controller_topic}],
            ),
            Node(
                package="ember",
                executable="ember-bridge",
                name="ember_bridge",
                output="screen",
                parameters=[
                    _config("bridge.yaml"),
                    {"robot": robot, "controller_topic": controller_topic, "rate_hz": rate},
                ],
            ),
            Node(
                package="ember",
                executable="ember-policy-node",
                name="ember_policy",
                output="screen",
                condition=IfCondition(PythonExpression(["'", checkpoint, "' != ''"])),
                parameters=[
                    _config("policy.yaml"),
                    {"checkpoint": checkpoint, "robot": robot, "rate_hz": rate, "task": task},
                ],
            ),
            Node(
                package="ember",
                executable="ember-recorder",
                name="ember_recorder",
                output="screen",
                parameters=[
                    _config("recorder.yaml"),
                    {
                        "root": LaunchConfiguration("root"),
                        "robot": robot,
                        "task": task,
                        "fps": LaunchConfiguration("fps"),
                        "command_topic": controller_topic,
                    },
                ],
            ),
            LogInfo(
                msg="type corrections in another terminal with `ember correct` (or `ros2 run ember ember-correct`)"
            ),
        ]
    )
