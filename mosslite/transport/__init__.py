"""How a client reaches the service: the Transport contract and its two ends.

- ``base``: the ``Transport`` ABC (every method's contract) and ``wait_for_job``.
- ``local``: the embedded default, the service core in this process.
- ``http``: ``mosslite serve`` over httpx; ``http_errors`` is its one boundary to
  ``mosslite.errors``, ``download`` fetches version files and patches into a file
  (resume, stop, hash as written), ``download_sockets`` reads their sockets in bulk.

Below client, sync and session; above the service it calls in-process.
"""
