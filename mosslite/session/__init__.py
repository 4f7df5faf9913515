"""Sessions: a durable local database an agent writes to, queries, and pushes as a diff
(issue #5). ``session.py`` holds the Session; ``store.py`` its database, ``model.py``
its model, ``memory.py`` its in-memory index, ``exchange.py`` push and pull."""

from .session import Session, SessionState

__all__ = ["Session", "SessionState"]
