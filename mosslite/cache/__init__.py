"""The local cache of index versions: the one way a version file reaches this device.

``layout`` (where versions live: ``<home>/cache/<source>/<project>/<index>/``, which of them
may go), ``lock`` (the folder's flock), ``verify`` (what makes a cached file
trusted), ``fetch`` (cache hit -> page patch -> resumable download -> verify ->
install). ``sync.IndexSync`` and ``session`` both fetch through it. It imports
transport, index, types and ``_fs``; never sync, session, client or cli.
"""
