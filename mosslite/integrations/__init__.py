"""Integrations with agent frameworks and protocols, one module each.

Each integration imports its framework lazily: nothing here is imported by
``import mosslite``, so the package never pays for a framework it does not use.
Install one with its extra, e.g. ``pip install 'mosslite[mcp]'``.
"""
