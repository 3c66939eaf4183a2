"""PyBullet backend: the tabletop tasks (Reach, PickPlace) and PushT on PyBullet, same ids, contract and experts."""
