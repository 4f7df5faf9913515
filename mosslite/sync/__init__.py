"""Keeping a loaded index current: fetch a newer version (hydration.py), swap readers
(swap.py), on a timer or a file watch (refresher.py, clock.py)."""
