"""Keeping a loaded index current: ``index_sync.IndexSync`` checks for a newer version
on a timer or a file watch (``clock.py``), fetches it through ``cache/`` and swaps
readers (``live_index.LiveIndex``)."""
