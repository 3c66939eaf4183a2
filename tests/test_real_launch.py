"""Launch files can't run here (no ``launch``/``launch_ros`` wheels), so read them (ast) and check that every
executable, parameter and topic they name exists and is wired consistently, through the launch files they include
(``IncludeLaunchDescription``: the included file's nodes, with the arguments passed to it, count as the including
file's); then check that rcl itself accepts the params YAML files and that a node declaring our parameters picks
the values up."""

from __future__ import annotations

import ast
import importlib
import os
import random
import xml.etree.ElementTree as ET
from dataclasses import fields
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from ember.real.correct import CorrectConfig
from ember.real.entrypoints import CONSOLE_SCRIPTS, EXECUTABLES, PACKAGE
from ember.real.params import build_config

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_DIR = ROOT / "launch"
LAUNCH_FILES = ("mock_arm.launch.py", "arm.launch.py", "policy.launch.py", "collect.launch.py")
REQUIRED = object()
"""Value of a launch argument without a default (the user must give it)."""
ARM_SIDE = ("ember-mock-arm", "ember-bridge")
"""The nodes of arm.launch.py, which policy.launch.py and collect.launch.py include rather than copy."""


# ---------------------------------------------------------------------------------------------- reading
def _value(node: ast.AST, names: dict[str, Any]) -> Any:
    """A literal, ``("arg", name)`` for ``LaunchConfiguration(name)``, or ``("expr", ...)`` for anything else."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "LaunchConfiguration"
    ):
        return ("arg", node.args[0].value)
    if isinstance(node, ast.List | ast.Tuple):
        return [_value(e, names) for e in node.elts]
    return ("expr", ast.unparse(node))


def _reads(node: ast.AST | None, names: dict[str, Any]) -> set[str]:
    """The launch arguments an expression reads: ``LaunchConfiguration(name)``, or a local bound to one."""
    found: set[str] = set()
    for n in ast.walk(node) if node is not None else ():
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "LaunchConfiguration":
            found.add(n.args[0].value)
        elif isinstance(n, ast.Name) and isinstance(names.get(n.id), tuple) and names[n.id][0] == "arg":
            found.add(names[n.id][1])
    return found


def _call_name(node: ast.AST) -> str:
    return node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else ""


def _include(call: ast.Call, names: dict[str, Any], parents: dict[ast.AST, ast.AST]) -> dict[str, Any]:
    """``IncludeLaunchDescription(PythonLaunchDescriptionSource(PathJoinSubstitution([FindPackageShare(pkg),
    "launch", "<file>"])), launch_arguments={...}.items())``, as ROS 2 launch files include an installed one."""
    where = ast.unparse(call)
    source = call.args[0]
    assert _call_name(source) == "PythonLaunchDescriptionSource", f"unsupported include source: {where}"
    join = source.args[0]
    assert _call_name(join) == "PathJoinSubstitution" and isinstance(join.args[0], ast.List), where
    share, *parts = join.args[0].elts
    assert _call_name(share) == "FindPackageShare", f"include a file by its package's share path: {where}"
    kw = {k.arg: k.value for k in call.keywords}
    arguments: dict[str, Any] = {}
    if "launch_arguments" in kw:
        given = kw["launch_arguments"]
        assert (
            isinstance(given, ast.Call)
            and isinstance(given.func, ast.Attribute)
            and given.func.attr == "items"
            and isinstance(given.func.value, ast.Dict)
        ), f"launch_arguments as {{name: value}}.items(): {where}"
        arguments = {
            k.value: _value(v, names)
            for k, v in zip(given.func.value.keys, given.func.value.values, strict=True)
        }
    scoped, up = False, parents.get(call)
    while up is not None and not scoped:  # inside a GroupAction that keeps the default scoped=True
        if _call_name(up) == "GroupAction":
            flags = {k.arg: k.value for k in up.keywords}
            scoped = not (isinstance(flags.get("scoped"), ast.Constant) and flags["scoped"].value is False)
        up = parents.get(up)
    return {
        "package": _value(share.args[0], names),
        "path": tuple(_value(p, names) for p in parts),
        "arguments": arguments,
        "scoped": scoped,
    }


def _resolve(include: dict[str, Any], child: dict[str, Any]) -> list[dict[str, Any]]:
    """The included file's nodes as the including file starts them: each of the included file's arguments is the
    value passed for it (an argument of the including file, or text), else the included file's default."""

    def through(value: Any) -> Any:
        if isinstance(value, tuple) and value[0] == "arg":
            name = value[1]
            if name not in include["arguments"]:
                return ("text", child["args"].get(name, REQUIRED))
            given = include["arguments"][name]
            return given if isinstance(given, tuple) else ("text", given)  # a launch argument is text
        return value

    def args_of(names: set[str]) -> set[str]:
        out = set()
        for name in names:
            value = through(("arg", name))
            if value[0] == "arg":
                out.add(value[1])
        return out

    return [
        node
        | {
            "inline": {k: through(v) for k, v in node["inline"].items()},
            "reads": args_of(node["reads"]),
            "condition_reads": args_of(node["condition_reads"]),
            "included_from": include["path"][-1],
        }
        for node in child["nodes"]
    ]


def read_launch(path: Path) -> dict[str, Any]:
    tree = ast.parse(path.read_text())
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in funcs, f"{path.name} has no generate_launch_description()"
    gen = funcs["generate_launch_description"]
    names: dict[str, Any] = {}
    for stmt in gen.body:  # robot = LaunchConfiguration("robot")
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            names[stmt.targets[0].id] = _value(stmt.value, names)
    imports = sorted(
        {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        | {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    )
    parents = {child: parent for parent in ast.walk(gen) for child in ast.iter_child_nodes(parent)}
    args: dict[str, Any] = {}
    nodes: list[dict[str, Any]] = []
    includes: list[dict[str, Any]] = []
    used_args: set[str] = set()
    calls = sorted(
        (n for n in ast.walk(gen) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)),
        key=lambda n: (n.lineno, n.col_offset),
    )  # source order: the order the launch file starts its nodes in
    for call in calls:
        kw = {k.arg: k.value for k in call.keywords}
        if call.func.id == "DeclareLaunchArgument":
            args[call.args[0].value] = (
                _value(kw["default_value"], names) if "default_value" in kw else REQUIRED
            )
        elif call.func.id == "LaunchConfiguration":
            used_args.add(call.args[0].value)
        elif call.func.id == "Node":
            yamls, inline = [], {}
            for element in kw["parameters"].elts:
                if isinstance(element, ast.Call) and getattr(element.func, "id", "") == "_config":
                    yamls.append(element.args[0].value)
                elif isinstance(element, ast.Dict):
                    inline.update(
                        {k.value: _value(v, names) for k, v in zip(element.keys, element.values, strict=True)}
                    )
                else:
                    raise AssertionError(f"{path.name}: unsupported parameters entry {ast.unparse(element)}")
            nodes.append(
                {
                    "package": _value(kw["package"], names),
                    "executable": _value(kw["executable"], names),
                    "name": _value(kw["name"], names),
                    "yamls": yamls,
                    "inline": inline,
                    "conditional": "condition" in kw,
                    "condition_reads": _reads(kw.get("condition"), names),
                    "reads": _reads(kw["parameters"], names) | _reads(kw.get("condition"), names),
                    "remappings": "remappings" in kw,
                    "included_from": None,
                }
            )
        elif call.func.id == "IncludeLaunchDescription":
            include = _include(call, names, parents)
            includes.append(include)
            if include["package"] == PACKAGE and include["path"][:1] == ("launch",):
                nodes.extend(_resolve(include, read_launch(LAUNCH_DIR / include["path"][-1])))
    for value in names.values():
        if isinstance(value, tuple) and value[0] == "arg":
            used_args.add(value[1])
    return {"imports": imports, "args": args, "nodes": nodes, "includes": includes, "used_args": used_args}


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def yaml_params(name: str, node_name: str) -> dict[str, Any]:
    data = yaml.safe_load((LAUNCH_DIR / "config" / name).read_text())
    assert list(data) == [node_name], (
        f"config/{name} must configure exactly node '{node_name}', has {list(data)}"
    )
    return flatten(data[node_name]["ros__parameters"])


def effective_params(launch: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Dataclass defaults <- YAML <- the launch file's dict (arguments at their defaults)."""
    exe = EXECUTABLES[node["executable"]]
    values = flatten_config(exe.config())
    for name in node["yamls"]:
        values.update(yaml_params(name, node["name"]))
    for key, value in node["inline"].items():
        if isinstance(value, tuple) and value[0] in ("arg", "text"):  # text: passed to an included file
            value = launch["args"][value[1]] if value[0] == "arg" else value[1]
            # launch_ros gives a substituted parameter the type its text parses to as YAML ("10.0" -> float)
            value = f"<{key}>" if value is REQUIRED else yaml.safe_load(value) if value != "" else ""
        values[key] = value
    return values


def flatten_config(cfg: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if hasattr(value, "__dataclass_fields__"):
            out.update(flatten_config(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


LAUNCHES = {name: read_launch(LAUNCH_DIR / name) for name in LAUNCH_FILES}


# ---------------------------------------------------------------------------------------------- structure
@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_file_structure(name):
    launch = LAUNCHES[name]
    assert set(launch["imports"]) <= {"launch", "launch_ros", "pathlib"}, launch["imports"]
    assert launch["nodes"], f"{name} starts no node"
    assert launch["used_args"] == set(launch["args"]), "every argument is declared and used"
    reached = set().union(*(node["reads"] for node in launch["nodes"]))
    assert set(launch["args"]) <= reached, (
        f"{name} declares {sorted(set(launch['args']) - reached)}, which reach no node's parameters or condition"
    )
    package = ET.parse(ROOT / "package.xml").getroot().findtext("name")
    for node in launch["nodes"]:
        assert node["package"] == PACKAGE == package
        exe = EXECUTABLES.get(node["executable"])
        assert exe is not None and exe.config is not None, (
            f"{node['executable']} is not an ember node executable"
        )
        module, func = exe.target.split(":")
        assert callable(getattr(importlib.import_module(module), func))
        assert node["name"] == exe.node_name, "node names must match the YAML keys and the nodes' defaults"
        assert not node["remappings"], "topics are parameters (checked below), not remappings"
        declared = set(exe.parameters())
        for yaml_name in node["yamls"]:
            unknown = set(yaml_params(yaml_name, node["name"])) - declared
            assert not unknown, f"config/{yaml_name} sets parameters {sorted(unknown)} that {exe.name} lacks"
        unknown = set(node["inline"]) - declared
        assert not unknown, f"{name} passes {sorted(unknown)} that {exe.name} does not declare"
        for key, value in node["inline"].items():
            if isinstance(value, tuple) and value[0] == "text":
                assert node["included_from"] and isinstance(value[1], str), f"{key}={value}"
                assert value[1] is not REQUIRED, (
                    f"{node['included_from']} needs {key}, which {name} does not pass"
                )
            elif isinstance(value, tuple):
                assert value[0] == "arg" and value[1] in launch["args"], (
                    f"{key}={value} is not a launch argument"
                )


INCLUDES = [(name, include) for name, launch in LAUNCHES.items() for include in launch["includes"]]


@pytest.mark.parametrize(
    ("name", "include"), INCLUDES, ids=[f"{n}->{i['path'][-1]}" for n, i in INCLUDES] or None
)
def test_includes_pass_every_argument_through(name, include):
    """An included file gets its arguments from the include, each of which reaches one of its nodes.

    ROS 2 launch sets each passed argument as a launch configuration, and an included file also sees every
    configuration of the including one: an argument both files declare must be passed explicitly (collect's
    ``task`` is an instruction, not the mock arm's sims task), and the include sits in a scoped ``GroupAction``
    so that what it sets (``task:=""``) does not override the including file's own configuration."""
    launch = LAUNCHES[name]
    assert include["package"] == PACKAGE, f"{name} includes a file of {include['package']}"
    target = include["path"][-1]
    assert include["path"] == ("launch", target) and target.endswith(".launch.py"), (
        f"{name} includes {include['path']}: setup.py installs launch/*.launch.py into share/{PACKAGE}/launch"
    )
    assert (LAUNCH_DIR / target).is_file() and target in LAUNCHES, f"{target} is not one of {LAUNCH_FILES}"
    child = LAUNCHES[target]
    passed = include["arguments"]
    unknown = set(passed) - set(child["args"])
    assert not unknown, f"{name} passes {sorted(unknown)}, which {target} does not declare"
    missing = {a for a, default in child["args"].items() if default is REQUIRED} - set(passed)
    assert not missing, f"{name} does not pass {sorted(missing)}, which {target} requires"
    implicit = (set(child["args"]) & set(launch["args"])) - set(passed)
    assert not implicit, f"{name}'s {sorted(implicit)} would reach {target} unnamed: pass them explicitly"
    reached = set().union(*(node["reads"] for node in child["nodes"]))
    for arg, value in passed.items():
        assert arg in reached, f"{name} passes {arg}, which reaches no node of {target}"
        if isinstance(value, tuple):
            assert value[0] == "arg" and value[1] in launch["args"], (
                f"{arg}={value} is not an argument of {name}"
            )
        else:
            assert isinstance(value, str), f"{arg}={value!r}: a launch argument is text"
    assert include["scoped"], f"{name} includes {target} outside a scoped GroupAction"


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_topics_are_wired_consistently(name):
    launch = LAUNCHES[name]
    nodes: dict[str, dict[str, Any]] = {}
    for node in launch["nodes"]:
        exe = EXECUTABLES[node["executable"]]
        params = effective_params(launch, node)
        given = {k: v for k, v in params.items() if not (isinstance(v, str) and v.startswith("<"))}
        build_config(exe.config, given)  # the values pass the node's own validation
        nodes[exe.name] = params

    def same(*pairs: tuple[str, str]) -> None:
        present = [(exe, key, nodes[exe][key]) for exe, key in pairs if exe in nodes]
        values = {v if not isinstance(v, list) else tuple(v) for _, _, v in present}
        assert len(values) <= 1, f"{name}: inconsistent wiring {present}"

    same(*((exe, "joint_states_topic") for exe in nodes))
    same(*((exe, "robot") for exe in nodes))
    same(
        ("ember-mock-arm", "controller_topic"),
        ("ember-bridge", "controller_topic"),
        ("ember-recorder", "command_topic"),
    )
    same(("ember-policy-node", "action_topic"), ("ember-bridge", "action_topic"))
    same(("ember-policy-node", "rate_hz"), ("ember-bridge", "rate_hz"))
    same(
        *(
            (exe, "expected_state_publisher")
            for exe in ("ember-bridge", "ember-policy-node", "ember-recorder")
            if exe in nodes
        )
    )  # one arm: every node pins the same joint-state publisher
    same(("ember-policy-node", "instruction_topic"), ("ember-recorder", "instruction_topic"))
    same(("ember-policy-node", "correction_topic"), ("ember-recorder", "correction_topic"))
    same(
        ("ember-mock-arm", "camera_topic_prefix"),
        ("ember-policy-node", "camera_topic_prefix"),
        ("ember-recorder", "camera_topic_prefix"),
        ("ember-bridge", "camera_topic_prefix"),
    )
    correct = CorrectConfig()
    for exe, key, tool in (
        ("ember-policy-node", "correction_topic", correct.correction_topic),
        ("ember-recorder", "correction_topic", correct.correction_topic),
        ("ember-recorder", "control_topic", correct.control_topic),
        ("ember-bridge", "estop_topic", correct.estop_topic),
        ("ember-bridge", "estop_reset_topic", correct.estop_reset_topic),
        ("ember-policy-node", "estop_reset_topic", correct.estop_reset_topic),
        ("ember-recorder", "estop_reset_topic", correct.estop_reset_topic),
    ):
        if exe in nodes:
            assert nodes[exe][key] == tool, (
                f"`ember correct` publishes {tool}, {exe} listens on {nodes[exe][key]}"
            )
    if "ember-mock-arm" in nodes and "ember-recorder" in nodes:
        assert set(nodes["ember-recorder"]["cameras"]) <= set(nodes["ember-mock-arm"]["cameras"])


def test_the_launch_files_start_what_their_docs_promise():
    exes = {name: [n["executable"] for n in launch["nodes"]] for name, launch in LAUNCHES.items()}
    assert exes["mock_arm.launch.py"] == ["ember-mock-arm"]
    assert exes["arm.launch.py"] == list(ARM_SIDE)
    arm = LAUNCHES["arm.launch.py"]
    assert [n["condition_reads"] for n in arm["nodes"]] == [{"use_mock"}, set()]  # the bridge always runs
    assert not any(d is REQUIRED for d in arm["args"].values()) and arm["args"]["use_mock"] == "true"
    for name in ("policy.launch.py", "collect.launch.py"):  # the arm side is included, not copied
        launch = LAUNCHES[name]
        assert [i["path"] for i in launch["includes"]] == [("launch", "arm.launch.py")], name
        assert [n["executable"] for n in launch["nodes"] if n["included_from"]] == list(ARM_SIDE), name
        assert not [n for n in launch["nodes"] if n["executable"] in ARM_SIDE and not n["included_from"]], (
            name
        )
        mock, bridge = launch["nodes"][:2]
        assert mock["condition_reads"] == {"use_mock"}, (
            f"{name}: use_mock must reach the mock arm's condition"
        )
        for key, arg in (("robot", "robot"), ("controller_topic", "controller_topic")):
            assert mock["inline"][key] == bridge["inline"][key] == ("arg", arg), (name, key)
        assert bridge["inline"]["rate_hz"] == ("arg", "rate"), name
    assert exes["policy.launch.py"] == ["ember-mock-arm", "ember-bridge", "ember-policy-node"]
    assert exes["collect.launch.py"] == [
        "ember-mock-arm",
        "ember-bridge",
        "ember-policy-node",
        "ember-recorder",
    ]
    policy = LAUNCHES["policy.launch.py"]
    assert {"checkpoint", "robot", "controller_topic", "rate", "use_mock"} <= set(policy["args"])
    assert policy["args"]["checkpoint"] is REQUIRED and policy["args"]["use_mock"] == "true"
    assert [n["conditional"] for n in policy["nodes"]] == [
        True,
        False,
        False,
    ]  # only the mock arm is optional
    mock = policy["nodes"][0]["inline"]
    assert {k: mock[k] for k in ("task", "split", "seed")} == {
        k: ("arg", k) for k in ("task", "split", "seed")
    }
    collect = LAUNCHES["collect.launch.py"]
    assert collect["args"]["root"] is REQUIRED
    # collect's `task` is the instruction (policy node, recorder), never the mock arm's sims task
    assert collect["nodes"][0]["inline"]["task"] == ("text", "")
    assert [n["inline"]["task"] for n in collect["nodes"][2:]] == [("arg", "task"), ("arg", "task")]


def test_console_scripts_match_the_installed_package():
    installed = {
        ep.name: ep.value
        for ep in metadata.entry_points(group="console_scripts")
        if ep.name.startswith("ember-")
    }
    if not installed:
        pytest.skip(
            "real/ console scripts are not in pyproject.toml yet (see real.entrypoints.CONSOLE_SCRIPTS)"
        )
    assert installed == CONSOLE_SCRIPTS


# ---------------------------------------------------------------------------------------------- rcl accepts them
def test_rcl_parses_the_yaml_and_nodes_pick_up_the_values():
    import rclpy
    from rclpy.node import Node

    from ember.real.params import declare_config

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    for exe in (e for e in EXECUTABLES.values() if e.config is not None):
        yaml_file = (
            LAUNCH_DIR
            / "config"
            / {
                "ember-mock-arm": "mock_arm.yaml",
                "ember-bridge": "bridge.yaml",
                "ember-policy-node": "policy.yaml",
                "ember-recorder": "recorder.yaml",
            }[exe.name]
        )
        context = rclpy.Context()
        rclpy.init(
            args=["test", "--ros-args", "--params-file", str(yaml_file)],
            context=context,
            domain_id=random.SystemRandom().randint(1, 100),
        )
        try:
            node = Node(exe.node_name, context=context)
            cfg = declare_config(node, exe.config, derived=exe.derived)
            resolved = flatten_config(cfg)
            for key, value in yaml_params(yaml_file.name, exe.node_name).items():
                got = resolved[key]
                assert (list(got) if isinstance(got, tuple) else got) == pytest.approx(value), (exe.name, key)
            assert sorted(
                p for p in node._parameters if p not in ("use_sim_time", "start_type_description_service")
            ) == sorted(exe.parameters())
            node.destroy_node()
        finally:
            rclpy.try_shutdown(context=context)
