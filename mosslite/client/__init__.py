"""Clients of the service: async MossClient and its blocking facade."""

from .blocking import SyncMossClient
from .core import MossClient

__all__ = ["MossClient", "SyncMossClient"]
