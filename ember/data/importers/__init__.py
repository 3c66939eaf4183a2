"""Importers into ember's LeRobot v3 datasets: robomimic HDF5 and rosbag2.

Each importer reads its source with the format's own library (h5py, rosbags), maps it onto
LeRobot's conventional keys and records it through :class:`~ember.data.DatasetWriter`, so an
imported dataset gets the same validation, crash safety and stats as a recorded one.
"""

from ember.data.importers.common import ImportResult

__all__ = ["ImportResult", "import_robomimic", "import_rosbag2"]


def import_robomimic(*args, **kwargs) -> ImportResult:
    from ember.data.importers.robomimic import import_robomimic as run

    return run(*args, **kwargs)


def import_rosbag2(*args, **kwargs) -> ImportResult:
    from ember.data.importers.rosbag2 import import_rosbag2 as run

    return run(*args, **kwargs)
