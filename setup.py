"""Only for colcon (ament_python needs a setup.py): installs the ROS 2 package index marker, package.xml,
launch files and their YAML next to the console scripts. pip reads everything else from pyproject.toml."""

from glob import glob

from setuptools import setup

setup(
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/ember"]),
        ("share/ember", ["package.xml"]),
        ("share/ember/launch", glob("launch/*.launch.py")),
        ("share/ember/launch/config", glob("launch/config/*.yaml")),
    ]
)
