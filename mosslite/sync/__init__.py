"""Keeping a loaded index current: fetch a newer version (hydration.py), swap readers
(live_index.py), on a timer or a file watch (index_sync.py, clock.py)."""
