"""SyncMossClient: MossClient for scripts and desktop apps that have no event loop.

It drives one async MossClient on a private event-loop thread instead of
duplicating it (cf. apsw's aio module), so both always behave the same. Every
coroutine method of MossClient is available here as a plain method.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..errors import ClosedError
from .core import MossClient

T = TypeVar("T")


class EventLoopThread:
    """A daemon thread running an asyncio loop, for calling coroutines from sync code.

    Invariant (issue #8): the thread runs until ``stop()``, whatever a call raises.
    A KeyboardInterrupt or SystemExit raised inside a call (by the caller's own
    document generator, read on a worker thread) is that call's outcome: its
    caller re-raises it, and the loop goes on serving the next calls."""

    def __init__(self, name: str = "mosslite-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._stop_requested = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """``loop.run_forever()`` until stopped. asyncio lets a KeyboardInterrupt or
        SystemExit out of a task escape ``run_forever`` (after storing it as the
        task's outcome): without running the loop again, this thread ended and the
        caller waited forever for the outcome to reach it. (Ctrl-C itself is raised
        in the main thread, never here.)"""
        while True:
            try:
                self.loop.run_forever()
                return
            except (KeyboardInterrupt, SystemExit):
                if self._stop_requested:
                    return

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("cannot block on the loop from inside it")
        if self.stopped:
            coro.close()  # never awaited, and no warning saying so
            raise ClosedError("this client is closed", hint="make a new one")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    @property
    def stopped(self) -> bool:
        return self.loop.is_closed() or not self._thread.is_alive()

    def stop(self) -> None:
        if self.stopped:
            return
        self._stop_requested = True
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class SyncMossClient:
    """Example::

        client = SyncMossClient("my-project", "my-key")
        job = client.create_index("faq", docs)
        client.wait_for_job(job.job_id)
    """

    def __init__(self, project_id: str, project_key: str, **kwargs: Any) -> None:
        self._loop = EventLoopThread()
        try:
            self._client: MossClient = self._loop.run(_make(project_id, project_key, kwargs))
        except BaseException:  # a bad argument: no loop thread left behind
            self._loop.stop()
            raise

    @property
    def async_client(self) -> MossClient:
        return self._client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        return self._blocking(attr)

    def _blocking(self, method: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> T:
            return self._loop.run(method(*args, **kwargs))

        return call

    def query(self, name: str, query: str, options: Any = None) -> Any:
        """Runs in the calling thread, not the loop thread: queries from many threads
        proceed in parallel instead of queueing behind one loop."""
        return self._client.query_local(name, query, options)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro``, code of your own over ``async_client``, on this client's loop
        thread and return its result: several MossClient calls as one blocking call,
        as the framework integrations (``mosslite/integrations/``) do. Example::

            async def add_and_wait(docs):
                job = await client.async_client.add_docs("faq", docs)
                return await client.async_client.wait_for_job(job.job_id)

            client.run(add_and_wait(docs))
        """
        return self._loop.run(coro)

    def close(self) -> None:
        """Close the client and stop its loop thread. Calling it twice is fine."""
        if self._loop.stopped:
            return
        try:
            self._loop.run(self._client.close())
        finally:
            self._loop.stop()

    def session(
        self, index_name: str, model_id: str | None = None, auto_load_on_init: bool = True, **kwargs: Any
    ) -> SyncSession:
        """``MossClient.session`` for code without an event loop: a SyncSession."""
        opened = self._loop.run(self._client.session(index_name, model_id, auto_load_on_init, **kwargs))
        return SyncSession(opened, self._loop)

    def __enter__(self) -> SyncMossClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _make(project_id: str, project_key: str, kwargs: dict[str, Any]) -> MossClient:
    # Built on the loop thread so anything it creates (httpx pools) belongs to that loop.
    return MossClient(project_id, project_key, **kwargs)


class SyncSession:
    """A Session driven on its client's loop thread: the same methods, blocking.
    ``query`` runs in the calling thread, as ``SyncMossClient.query`` does. Example::

        session = SyncMossClient("my-project", "my-key").session("call-123")
        session.add_docs([DocumentInfo(id="n1", text="...")])
        session.push_index()
    """

    def __init__(self, session: Any, loop: EventLoopThread) -> None:
        self._session = session
        self._loop = loop

    @property
    def async_session(self) -> Any:
        return self._session

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._session, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run(attr(*args, **kwargs))

        return call

    def query(self, query: str, options: Any = None) -> Any:
        return self._session.query_local(query, options)

    def __enter__(self) -> SyncSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.run(self._session.close())
