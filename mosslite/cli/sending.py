"""Ctrl-C while documents are being sent: they stop, the service queues nothing, and the command says so.

Before #12 a Ctrl-C while ``index create`` or ``doc add`` was sending printed
click's bare ``Aborted!``, and on the embedded service the job was queued (and
built) anyway: the service reads the documents on a worker thread, which a
Ctrl-C does not stop, and the process waited for that thread before exiting.

So the documents pass through ``_Documents`` on their way. Ctrl-C cancels the
command's task (asyncio.run turns SIGINT into a cancellation); the cancellation
stops the documents, and the next one the service reads raises
``SendingInterrupted`` wherever it is being read. The service removes the batch
it was writing (service/intake.py: refused input queues nothing), and the
command says that nothing was queued and exits with status 130.

If every document had been read already, the service may have queued the job
in the moment before the Ctrl-C: the command says so, and where to look.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

import click

from ..client import MossClient
from ..types import DocumentInfo
from .config import Credentials
from .output import say
from .waiting import INTERRUPTED

T = TypeVar("T")


class SendingInterrupted(Exception):
    """Raised to the service's reader of the documents once Ctrl-C has stopped them."""


class _Documents:
    """The documents, until they are stopped; ``all_read`` once the reader had every one."""

    def __init__(self, docs: Iterable[DocumentInfo]) -> None:
        self._docs = docs
        self.stopped = threading.Event()
        self.all_read = False

    def __iter__(self) -> Iterator[DocumentInfo]:
        for doc in self._docs:
            if self.stopped.is_set():
                raise SendingInterrupted("stopped by Ctrl-C")
            yield doc
        self.all_read = True


def send(
    creds: Credentials,
    docs: Iterable[DocumentInfo],
    call: Callable[[MossClient, Iterable[DocumentInfo]], Awaitable[T]],
    *,
    what: str,
    name: str,
) -> T:
    """``call(client, docs)`` on a fresh client (``Credentials.run``), with the documents
    stopped by Ctrl-C; ``what`` and the index ``name`` word the message if it comes."""
    documents = _Documents(docs)

    async def body(client: MossClient) -> T:
        try:
            return await call(client, documents)
        except asyncio.CancelledError:  # Ctrl-C: stop the documents where they are read
            documents.stopped.set()
            raise

    try:
        return creds.run(body)
    except KeyboardInterrupt:
        if documents.all_read:
            say(
                f"interrupted once every document was sent ({what}): the service may have queued the job; "
                f"`mosslite index get {name}` shows whether a new version is on its way"
            )
        else:
            say(f"interrupted while sending ({what}): the service queued nothing; run the command again to send them")
        raise click.exceptions.Exit(INTERRUPTED) from None


__all__ = ["SendingInterrupted", "send"]
