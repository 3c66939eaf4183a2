"""The one exception type of ``ember.data``.

Every failure a user can act on (bad frame, corrupt shard, missing metadata) raises
:class:`DatasetError` with a message that names the key, file or episode involved and
says what to do, so callers never have to dig through pyarrow/PyAV tracebacks.
"""

from __future__ import annotations


class DatasetError(Exception):
    """A dataset could not be written or read; the message says what is wrong and how to fix it."""
