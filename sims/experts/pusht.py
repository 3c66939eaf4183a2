"""A scripted PushT expert: deterministic, closed-loop quasi-static pushing.

Why this design: a diffusion policy will imitate these demonstrations, so they must be smooth and repeatable,
the same situation always giving the same motion. The expert therefore plans nothing random. Each decision is a
pure function of the block pose, the goal and the pusher position:

1. **Choose a push.** Contact candidates lie along the T's outline (outward normal ``n``; pushing along ``-n``).
   For each, the quasi-static pushing model with an ellipsoidal limit surface predicts the block's motion per
   unit push: ``v = d``, ``omega = (r x d) / rho^2`` (``r`` from the centre of mass to the contact, ``d = -n``),
   normalised so that the contact point advances one unit. The candidate whose predicted motion best reduces the
   weighted pose error (metres, plus ``rot_weight`` metres per radian) wins; near-ties go to the one nearest the
   pusher. Pushing through the centre translates, pushing off-centre on an arm rotates.
2. **Go there without touching the block.** Straight if the segment is clear of the T grown by the pusher radius
   and a clearance; otherwise along a circle around the block (the pusher cannot lift), until the straight way in
   is clear.
3. **Push.** The pusher tracks the chosen point of the block's outline (in the block frame, so it follows a
   rotating block) and advances into it by a step proportional to the remaining error. The stroke ends when it
   stops paying off (another contact is clearly better or the predicted gain vanishes); the pusher backs off and
   chooses again.

Actions are ``ee_pos`` targets (table frame), or the equivalent ``ee_delta`` steps; the expert reads the env's
privileged state (block pose, goal pose, pusher position) through ``env.unwrapped``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ember.sims.tshape import TShape

TOUCH_MARGIN = 0.003
"""A travelling pusher keeps at least this gap (m) to the block (its position lags the command a little)."""


@dataclass(frozen=True)
class PushTExpertConfig:
    """Gains and distances (metres, per 10 Hz control step unless noted)."""

    travel_speed: float = 0.03
    push_speed: float = 0.015
    push_gain: float = 0.8
    """Fraction of the predicted optimal push length commanded per step (below 1: the model is approximate)."""
    min_push: float = 0.0008
    """A stroke whose predicted useful push is shorter than this has finished."""
    clearance: float = 0.012
    """Gap kept between pusher and block while travelling around it."""
    approach_gap: float = 0.006
    """Stand-off in front of the contact point before pushing in."""
    retreat: float = 0.008
    rot_weight: float = 0.06
    """Metres of position error that weigh as much as one radian of yaw error."""
    rho: float = 0.05
    """Limit-surface radius of gyration of the block's friction (m): larger means harder to rotate."""
    switch_ratio: float = 1.5
    """End a stroke when another contact promises this many times the active one's gain."""
    near_tie: float = 0.8
    """Candidates within this fraction of the best gain count as ties; the nearest one is taken."""
    spacing: float = 0.006
    """Distance between contact candidates along an edge."""
    corner_inset: float = 0.004
    """Keep contacts this far from a convex corner, where the outward normal is ill-defined."""


def _t_outline(tshape: TShape, pusher_radius: float, cfg: PushTExpertConfig) -> tuple[np.ndarray, np.ndarray]:
    """Contact candidates (points, outward normals) on the T's outline, in the block frame."""
    (_, bar_cy, bar_hx, bar_hy), (_, stem_cy, stem_hx, stem_hy) = tshape.rects
    top, under = bar_cy + bar_hy, bar_cy - bar_hy
    bottom = stem_cy - stem_hy
    concave = pusher_radius + 0.006  # the pusher must fit next to the inner corner
    inset = cfg.corner_inset
    edges = [  # (start, end, outward normal)
        ((-bar_hx + inset, top), (bar_hx - inset, top), (0.0, 1.0)),
        ((bar_hx, under + inset), (bar_hx, top - inset), (1.0, 0.0)),
        ((-bar_hx, under + inset), (-bar_hx, top - inset), (-1.0, 0.0)),
        ((stem_hx + concave, under), (bar_hx - inset, under), (0.0, -1.0)),
        ((-bar_hx + inset, under), (-stem_hx - concave, under), (0.0, -1.0)),
        ((stem_hx, bottom + inset), (stem_hx, under - concave), (1.0, 0.0)),
        ((-stem_hx, bottom + inset), (-stem_hx, under - concave), (-1.0, 0.0)),
        ((-stem_hx + inset, bottom), (stem_hx - inset, bottom), (0.0, -1.0)),
    ]
    points, normals = [], []
    for start, end, normal in edges:
        a, b = np.array(start), np.array(end)
        length = float(np.linalg.norm(b - a))
        if length <= 0:
            points.append((a + b) / 2)
            normals.append(normal)
            continue
        n = max(2, int(round(length / cfg.spacing)) + 1)
        for t in np.linspace(0.0, 1.0, n):
            points.append(a + t * (b - a))
            normals.append(normal)
    points_a, normals_a = np.array(points), np.array(normals, dtype=float)
    # Keep only contacts whose stand-off point is clear of the whole T (near the inner corners it may not be).
    pre = points_a + normals_a * (pusher_radius + cfg.approach_gap)
    clear = ~tshape.contains((0.0, 0.0, 0.0), pre, margin=pusher_radius + TOUCH_MARGIN + 0.001)
    return points_a[clear], normals_a[clear]


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class PushTExpert:
    """Scripted expert for ``ember/PushT-v0``. Call ``reset()`` at each episode start, then ``act(env)`` each step."""

    def __init__(self, config: PushTExpertConfig | None = None) -> None:
        self.cfg = config or PushTExpertConfig()
        self._points: np.ndarray | None = None
        self._normals: np.ndarray | None = None
        self.reset()

    def reset(self, goal_override: tuple[float, float, float] | None = None) -> None:
        """Start an episode; ``goal_override`` (x, y, yaw) is a goal pose this expert pushes toward instead of the
        env's (failing demonstrations, :mod:`ember.sims.experts.behaviors`)."""
        self.mode = "select"
        self.active: int | None = None
        self._retreat_dir = np.zeros(2)
        self.goal_override = goal_override

    # ------------------------------------------------------------------ model of pushing
    def _candidates(self, env) -> tuple[np.ndarray, np.ndarray]:
        if self._points is None:
            self._points, self._normals = _t_outline(env.tshape, env.pusher_radius, self.cfg)
        return self._points, self._normals

    def _evaluate(self, env, block: np.ndarray, error: np.ndarray):
        """World contact points, normals, per-candidate optimal push length and squared-error gain."""
        pts, nrm = self._candidates(env)
        c, s = math.cos(block[2]), math.sin(block[2])
        rot = np.array([[c, -s], [s, c]])
        r = pts @ rot.T  # centre of mass -> contact, world axes
        n = nrm @ rot.T
        d = -n
        cross = r[:, 0] * d[:, 1] - r[:, 1] * d[:, 0]
        rho2 = self.cfg.rho**2
        scale = 1.0 / (1.0 + cross**2 / rho2)
        twist = np.column_stack([d[:, 0] * scale, d[:, 1] * scale, cross / rho2 * scale])
        w = np.array([1.0, 1.0, self.cfg.rot_weight])
        wt, we = twist * w, error * w
        dot = wt @ we
        norm2 = np.einsum("ij,ij->i", wt, wt)
        length = np.where(dot > 0, dot / norm2, 0.0)
        gain = np.where(dot > 0, dot**2 / norm2, 0.0)
        points = r + block[:2]
        # Candidates whose approach would leave the workspace are not options.
        centre = points + n * env.pusher_radius
        pre = centre + n * (self.cfg.approach_gap + 0.004)
        lo, hi = env.WORKSPACE_LOW + 0.005, env.WORKSPACE_HIGH - 0.005
        ok = np.all((pre >= lo) & (pre <= hi), axis=1) & np.all((centre >= lo) & (centre <= hi), axis=1)
        gain = np.where(ok, gain, 0.0)
        return centre, n, length, gain

    # ------------------------------------------------------------------ navigation
    def _clear(self, env, block: np.ndarray, a: np.ndarray, b: np.ndarray, margin: float) -> bool:
        n = max(2, int(np.linalg.norm(b - a) / 0.004) + 1)
        pts = a[None] + np.linspace(0.0, 1.0, n)[:, None] * (b - a)[None]
        return not env.tshape.contains(tuple(block), pts, margin=margin).any()

    def _travel(self, env, block: np.ndarray, pusher: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Next waypoint of the shortest path to ``goal`` that keeps clear of the block.

        A visibility graph over the T's convex corners grown by pusher radius + clearance: at most 8 nodes, so
        Dijkstra is instant, and the path (hence the demonstration) is a deterministic function of the poses.
        """
        touch = env.pusher_radius + TOUCH_MARGIN  # a segment closer than this to the T would touch it
        if self._clear(env, block, pusher, goal, touch):
            return goal
        nodes = [pusher, goal, *self._corner_nodes(env, block)]
        n = len(nodes)
        dist = np.full(n, np.inf)
        prev = np.full(n, -1)
        dist[0] = 0.0
        done = np.zeros(n, dtype=bool)
        for _ in range(n):
            i = int(np.argmin(np.where(done, np.inf, dist)))
            if not np.isfinite(dist[i]) or i == 1:
                break
            done[i] = True
            for j in range(n):
                if done[j] or j == i:
                    continue
                step = float(np.linalg.norm(nodes[j] - nodes[i]))
                if dist[i] + step < dist[j] and self._clear(env, block, nodes[i], nodes[j], touch):
                    dist[j] = dist[i] + step
                    prev[j] = i
        if not np.isfinite(dist[1]):  # boxed in (e.g. against the workspace edge): back away from the block
            away = pusher - block[:2]
            return pusher + away / max(np.linalg.norm(away), 1e-6) * 0.02
        j = 1
        while prev[j] != 0:
            j = int(prev[j])
        return nodes[j]

    def _corner_nodes(self, env, block: np.ndarray) -> list[np.ndarray]:
        """The T's six convex corners, pushed out diagonally by pusher radius + clearance (world frame)."""
        m = env.pusher_radius + self.cfg.clearance
        (_, bar_cy, bar_hx, bar_hy), (_, stem_cy, stem_hx, stem_hy) = env.tshape.rects
        top, under, bottom = bar_cy + bar_hy, bar_cy - bar_hy, stem_cy - stem_hy
        local = np.array(
            [
                [-bar_hx - m, top + m],
                [bar_hx + m, top + m],
                [bar_hx + m, under - m],
                [-bar_hx - m, under - m],
                [stem_hx + m, bottom - m],
                [-stem_hx - m, bottom - m],
            ]
        )
        c, s = math.cos(block[2]), math.sin(block[2])
        world = local @ np.array([[c, -s], [s, c]]).T + block[:2]
        lo, hi = env.WORKSPACE_LOW, env.WORKSPACE_HIGH
        return [p for p in world if np.all(p >= lo) and np.all(p <= hi)]

    # ------------------------------------------------------------------ policy
    def act(self, env) -> np.ndarray:
        """The next action for ``env`` (``ee_pos``: a pusher target; ``ee_delta``: the step toward it)."""
        u = env.unwrapped
        target = self._target(u)
        if u.action_space_type == "ee_delta":
            return np.clip(target - u.commanded_pos, u.action_space.low, u.action_space.high).astype(
                np.float32
            )
        return target

    def _target(self, u) -> np.ndarray:
        cfg = self.cfg
        block = u.block_pose()
        goal = np.asarray(u.goal_pose if self.goal_override is None else self.goal_override, dtype=float)
        error = np.array([goal[0] - block[0], goal[1] - block[1], _wrap(goal[2] - block[2])])
        pusher = u.pusher_pos()
        cmd = u.commanded_pos
        centre, normals, length, gain = self._evaluate(u, block, error)

        if self.mode == "push" and self.active is not None:
            i = self.active
            best = float(gain.max())
            if length[i] * cfg.push_gain < cfg.min_push or best > cfg.switch_ratio * gain[i]:
                self.mode = "retreat"
                self._retreat_dir = normals[i]
            else:
                step = min(cfg.push_speed, max(cfg.min_push, cfg.push_gain * length[i]))
                target = centre[i] - normals[i] * step
                return self._limit(u, cmd, target, cfg.push_speed + 0.01)

        if self.mode == "retreat":
            self.mode = "select"
            return self._limit(u, cmd, pusher + self._retreat_dir * cfg.retreat, cfg.travel_speed)

        if self.mode == "select" or self.active is None:
            self.active = self._select(centre, gain, pusher)
            self.mode = "travel"

        i = self.active
        pre = centre[i] + normals[i] * cfg.approach_gap
        if np.linalg.norm(pusher - pre) < 0.004:
            self.mode = "push"
            return self._limit(u, cmd, centre[i] - normals[i] * cfg.min_push, cfg.push_speed)
        waypoint = self._travel(u, block, pusher, pre)
        speed = cfg.travel_speed if np.linalg.norm(pusher - pre) > 0.03 else max(0.008, cfg.travel_speed / 2)
        return self._limit(u, cmd, waypoint, speed)

    def _select(self, centre: np.ndarray, gain: np.ndarray, pusher: np.ndarray) -> int:
        best = float(gain.max())
        if best <= 0:
            return int(np.argmax(gain))
        ties = np.flatnonzero(gain >= self.cfg.near_tie * best)
        dist = np.linalg.norm(centre[ties] - pusher, axis=1)
        return int(ties[int(np.argmin(dist))])

    @staticmethod
    def _limit(env, cmd: np.ndarray, target: np.ndarray, speed: float) -> np.ndarray:
        move = np.asarray(target, dtype=float) - cmd
        dist = float(np.linalg.norm(move))
        if dist > speed:
            move *= speed / dist
        out = np.clip(cmd + move, env.WORKSPACE_LOW, env.WORKSPACE_HIGH)
        return out.astype(np.float32)
