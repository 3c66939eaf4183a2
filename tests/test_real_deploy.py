"""``ember deploy`` (``ember.real.deploy.run_deploy``): mock arm, bridge, policy node and recorder in ONE process, as a
pip-only user runs them. Runs in a child process: it owns rclpy's signal handlers and a GL context."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ember.data import EmberDataset
from ember.real.testing.processes import ros_env
from ember.real.testing.reach import cached_reach_policy, demo_target

pytestmark = pytest.mark.timeout(180)


def test_deploy_runs_every_node_in_one_process(tmp_path_factory):
    checkpoint = cached_reach_policy(tmp_path_factory.getbasetemp() / "ember_reach_policy")
    tmp = tmp_path_factory.mktemp("deploy")
    code = (
        "import json, sys\n"
        "from real.deploy import DeployConfig, run_deploy\n"
        f"s = run_deploy(DeployConfig(checkpoint={str(checkpoint)!r}, duration_s=9.0, task='reach',\n"
        f"               record={str(tmp / 'data')!r}, out={str(tmp / 'run')!r}))\n"
        "print('SUMMARY ' + json.dumps(s))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=ros_env(), capture_output=True, text=True, timeout=150
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout.split("SUMMARY ", 1)[1])
    arm, bridge, policy = summary["mock_arm"], summary["bridge"], summary["policy"]
    np.testing.assert_allclose(arm["position"][:7], demo_target()[:7], atol=0.03)
    assert arm["unsafe"] == 0 and arm["commands"] == bridge["commands"] >= 20
    safety = bridge["safety"]
    # A nominal run sends nothing the filter must refuse for its content; on a loaded machine one command may
    # legitimately be dropped for timing (an observation or action that arrived late), which is the filter working.
    for reason in ("nonfinite", "malformed", "position_limit", "step", "workspace", "estop"):
        assert safety.get(reason, 0) == 0, json.dumps(safety)
    timing = sum(safety.get(r, 0) for r in ("stale_observation", "stale_action", "no_observation"))
    assert timing <= 1 and policy["errors"] == 0, json.dumps(safety)
    metrics = json.loads((tmp / "run" / "metrics.json").read_text())
    assert metrics["bridge"]["safety"]["passed"] == bridge["safety"]["passed"]
    assert json.loads((tmp / "run" / "config.json").read_text())["checkpoint"] == str(checkpoint)
    ds = EmberDataset(tmp / "data")
    assert ds.num_episodes == 1 and ds.num_frames >= 40  # the episode in progress was saved at shutdown
    ep = ds.episode(0)
    assert set(ep["task"]) == {"reach"} and set(ep["language.correction"]) == {""}
