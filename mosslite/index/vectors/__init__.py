"""The vector searches: exact cosine top-k over an index's hydrated float32 matrix.

Every search here returns what one float32 product over every row returns; the
faster ones only read less to find it. Lowest first (a module imports only
those above it in this list, and ``index.topk``):

- ``codes``: the rows rotated onto their principal directions, in 8 bits
  (``Codebook``, ``Codes``); ``stored_codes``: them in the index file.
- ``exact``: ``VectorSearch`` (what every search offers), ``ExactScan`` and
  ``ColumnScan`` (the same product over a transposed copy).
- ``integer_product``: q @ M in int32 by onnxruntime, checked exact.
- ``int8``: ``Int8Prefilter``, an 8-bit copy bounds every score, float32 rescores.
- ``rotated``: ``PrincipalScreen``, the int8 search on rotated rows, head first.
- ``choice``: which of them serves a matrix of a given size (``vector_search``).
"""
