"""pybullet functions bound to one private DIRECT client.

Like ``pybullet_utils.bullet_client.BulletClient`` (several independent simulations in one process), without its
``argv[0]=`` print on connect and with the bound functions cached instead of rebuilt on every call (hot paths call
pybullet thousands of times per second).
"""

from __future__ import annotations

import functools
from typing import Any


class Bullet:
    def __init__(self) -> None:
        import pybullet

        self._pb = pybullet
        self.client = pybullet.connect(pybullet.DIRECT)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._pb, name)
        if callable(attr) and type(attr).__name__ == "builtin_function_or_method":
            attr = functools.partial(attr, physicsClientId=self.client)
            setattr(self, name, attr)
        return attr

    def close(self) -> None:
        if self.client >= 0:
            try:
                self._pb.disconnect(physicsClientId=self.client)
            except self._pb.error:  # already gone
                pass
            self.client = -1

    def __del__(self) -> None:
        self.close()
