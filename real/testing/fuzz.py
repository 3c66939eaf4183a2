"""Fuzzing the safety filter: random robots, configs, arm states, timings and command streams, and a reference
model that checks every decision of :class:`ember.real.safety.SafetyFilter` against what it promises.

One generator, two sources of randomness: every random choice goes through a :class:`Source`
(``integer``/``real``/``chance``), so ``tests/test_real_safety_fuzz.py`` drives it with hypothesis (which then
shrinks a failure to a short stream) and ``bench/ros/safety_fuzz.py`` with a seeded numpy generator (10^6
commands). numpy only; hypothesis is imported by the test, never here.

The pieces: :class:`~ember.real.testing.fuzz_scenarios.Source` and the scenarios (``fuzz_scenarios``), the command
streams (``fuzz_streams``), the reference model and the invariants it checks on every decision (``fuzz_oracle``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ember.real.safety import SafetyFilter
from ember.real.testing.fuzz_oracle import Oracle, Stats
from ember.real.testing.fuzz_scenarios import NumpySource, Scenario, Source, random_scenario
from ember.real.testing.fuzz_streams import Stream


def run_scenario(
    src: Source, sc: Scenario, n_events: int, filter_cls: type[SafetyFilter] = SafetyFilter
) -> Stats:
    """Drive one filter through ``n_events`` events of a :class:`Stream`, checking each with an :class:`Oracle`
    (``filter_cls``: a subclass, e.g. a deliberately broken one to show the oracle notices)."""
    f = filter_cls(sc.limits, sc.config, fk=sc.fk, logger=lambda msg: None)
    oracle = Oracle(sc)
    stream = Stream(src, sc)
    sent: np.ndarray | None = None
    for _ in range(n_events):
        s = stream.next(sent)
        try:
            if s.op == "check":
                result: Any = f.check(
                    s.names,
                    s.positions,
                    measured=s.measured,
                    observation_age_s=s.observation_age_s,
                    action_age_s=s.action_age_s,
                    now=s.now,
                )
            elif s.op == "hold":
                result = f.hold(s.measured, "fuzz", now=s.now, prefer_measured=s.prefer_measured)
            elif s.op == "estop":
                result = f.engage_estop("fuzz", now=s.now)
            else:
                result = f.reset_estop()
        except Exception as e:  # the filter must decide, never raise (the bridge's callback would die)
            oracle.stats.commands += s.op == "check"
            oracle._fail(f"{s.op} {s.kind}: raised {type(e).__name__}: {e} (measured {s.measured!r})")
            sent = None
            continue
        sent = oracle.observe(f, s, result)
    oracle.finish(f)
    oracle.stats.scenarios = 1
    return oracle.stats


def fuzz(
    commands: int,
    seed: int = 0,
    events_per_scenario: int = 200,
    panda_share: float = 0.25,
    filter_cls: type[SafetyFilter] = SafetyFilter,
    progress: Callable[[Stats], None] | None = None,
) -> Stats:
    """Seeded numpy fuzzing until ``commands`` commands were checked: scenario ``i`` draws from
    ``default_rng([seed, i])``, so any scenario can be replayed alone."""
    total = Stats()
    i = 0
    while total.commands < commands:
        src = NumpySource([seed, i])
        sc = random_scenario(src, panda_share=panda_share)
        total.merge(run_scenario(src, sc, events_per_scenario, filter_cls=filter_cls))
        i += 1
        if progress is not None:
            progress(total)
    return total
