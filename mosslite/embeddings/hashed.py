"""``hashed-ngrams-256``: a feature-hashing embedder with no model and no dependencies.

It is lexical, not semantic: words and character trigrams are hashed into 256
signed buckets (the "hashing trick"), so texts sharing words or word pieces land
close together, while synonyms do not. It exists for tiny devices and for tests,
where loading a 90 MB transformer would cost more than the search itself.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from .base import Embedder, normalise_rows

_WORD_RE = re.compile(r"\w+", re.UNICODE)


def _features(text: str) -> list[str]:
    words = _WORD_RE.findall(text.lower())
    feats = [f"w:{w}" for w in words]
    for w in words:
        padded = f"#{w}#"
        feats.extend(f"c:{padded[i:i + 3]}" for i in range(len(padded) - 2))
    return feats


class HashedNgramEmbedder(Embedder):
    model_id = "hashed-ngrams-256"
    dimension = 256

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            feats = _features(text)
            if not feats:
                continue
            hashes = np.fromiter((zlib.crc32(f.encode()) for f in feats), dtype=np.uint32, count=len(feats))
            buckets = (hashes % self.dimension).astype(np.intp)
            signs = np.where((hashes >> 16) & 1, 1.0, -1.0).astype(np.float32)
            np.add.at(out[row], buckets, signs)
        # Sublinear term frequency: a word repeated ten times is not ten times as relevant.
        np.copyto(out, np.sign(out) * np.log1p(np.abs(out)))
        return normalise_rows(out)
