"""ember.data: episodes <-> LeRobot v3 datasets (parquet + mp4 + meta/), readers and training windows.

See ``ember/data/writer.py`` for the write path and its crash-safety guarantees, and
``docs/datasets.md`` for the whole picture (layout, language, labels, importers, loader, CLI). The torch-based
parts (``WindowDataset``, ``to_batch``) are imported on first use, so a recording process that
only writes datasets does not pay for importing torch.
"""

from typing import TYPE_CHECKING, Any

from ember.data.dataset import DatasetMeta, EmberDataset
from ember.data.errors import DatasetError, DiskFullError
from ember.data.labels import add_columns
from ember.data.language import EpisodeLanguage, LanguageRow, correction, instruction, motion
from ember.data.repair import repair
from ember.data.stats import aggregate_stats, compute_stats
from ember.data.verify import VerifyReport, verify
from ember.data.writer import DatasetWriter

if TYPE_CHECKING:
    from ember.data.frames import to_batch
    from ember.data.windows import WindowDataset

__all__ = [
    "DatasetError",
    "DatasetMeta",
    "DatasetWriter",
    "DiskFullError",
    "EmberDataset",
    "EpisodeLanguage",
    "LanguageRow",
    "VerifyReport",
    "WindowDataset",
    "add_columns",
    "aggregate_stats",
    "compute_stats",
    "correction",
    "instruction",
    "motion",
    "repair",
    "to_batch",
    "verify",
]


def __getattr__(name: str) -> Any:
    if name == "WindowDataset":
        from ember.data.windows import WindowDataset

        return WindowDataset
    if name == "to_batch":
        from ember.data.frames import to_batch

        return to_batch
    raise AttributeError(f"module 'ember.data' has no attribute {name!r}")
