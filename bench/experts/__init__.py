"""Expert success per task, backend, robot and split: ``python -m bench.experts`` (see run.py)."""
