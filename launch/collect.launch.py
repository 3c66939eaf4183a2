"""Collect language-corrected demonstrations (Yell At Your Robot / RT-H style).

    ros2 launch ember collect.launch.py root:=data/corrections task:="put the cube in the bowl" \
        checkpoint:=outputs/train/run/checkpoints/last use_mock:=true
    # in another terminal, type corrections while the robot runs:
    ember correct          # or: ros2 run ember ember-correct

The recorder stores observations, the command sent to the arm (the action), the active instruction and each
correction with its time, episode by episode. With ``checkpoint`` empty no policy runs (teleoperate through the
bridge's /ember/action or the controller directly). The arm side (mock arm with ``use_mock:=true``, bridge) is
arm.launch.py, included with this file's arguments. Parameters: config/*.yaml; the arguments override them.
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, IncludeLaunchDescription, LogInfo
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
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
            # the arm (mock or real) and the bridge: arm.launch.py, in a scoped group so that what it sets stays
            # there. `task` here is the instruction, not a sims task: it is passed as "" (the plain mock scene),
            # or this file's `task` would reach the mock arm (ROS 2 launch hands an included file the including
            # file's configurations of the same name)
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
                            "task": "",
                            "checkpoint": checkpoint,  # the mock arm renders the policy's cameras
                        }.items(),
                    )
                ]
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
