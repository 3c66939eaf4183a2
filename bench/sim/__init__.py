"""Environment overhead against raw MuJoCo: ``python -m bench.sim`` (see run.py)."""
