"""Project keys: minted at random, stored only as an HMAC under a secret kept beside the catalog.

Invariants (issue #8):
- Nothing in the catalog reveals a key. A key's row holds
  HMAC-SHA256(secret, key); the 32-byte secret lives in its own file
  (``catalog.secret``, mode 0600) next to the catalog, so a copied catalog
  cannot even test guesses of a short, user-chosen key such as ``my-key``.
  Back the two files up together: without the secret no stored key opens.
- A key is listed by its id, the first 8 hex digits of its HMAC: the holder of
  the key can tell which row is theirs (``key_id``); nobody else learns
  anything from it.
- Catalogs written before this stored ``sha256(key)`` and the key's first six
  characters (the whole of a short key). Opening one drops the characters
  (catalog.py's migration), and each old hash is replaced the first time its
  key is presented.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from .._fs import fsync_dir, temp_path_for
from ..errors import IntegrityError

KEY_PREFIX = "mk_"
SECRET_BYTES = 32
SECRET_SUFFIX = ".secret"
KEY_ID_CHARS = 8
#: The ``scheme`` column of a key row.
HMAC_SCHEME = "hmac-sha256"
LEGACY_SCHEME = "sha256"


def mint_key() -> str:
    """A new random key: 192 bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(24)


def legacy_hash(key: str) -> str:
    """What catalogs before issue #8 stored; only looked up to replace it."""
    return hashlib.sha256(_key_bytes(key)).hexdigest()


class KeyHasher:
    """HMACs keys under the secret stored beside ``catalog_path`` (created on first use)."""

    def __init__(self, catalog_path: Path, *, has_keys: bool) -> None:
        self.secret_path = Path(catalog_path).with_suffix(SECRET_SUFFIX)
        if has_keys and not self.secret_path.exists():
            raise IntegrityError(
                f"the catalog {catalog_path} holds keys but their secret {self.secret_path.name} is missing",
                hint="restore it from the backup the catalog came from; without it no stored key opens",
            )
        self._secret = _load_or_create_secret(self.secret_path)

    def hash(self, key: str) -> str:
        return hmac.new(self._secret, _key_bytes(key), hashlib.sha256).hexdigest()


def key_id(key_hash: str) -> str:
    return key_hash[:KEY_ID_CHARS]


def _key_bytes(key: str) -> bytes:
    return key.encode("utf-8", "surrogatepass")  # (a lone surrogate is just no one's key)


def _load_or_create_secret(path: Path) -> bytes:
    """The secret at ``path``; a new one if there is none. Two processes starting on
    one new folder agree: the file is linked into place whole or not at all, and the
    loser reads the winner's."""
    if not path.exists():
        temp = temp_path_for(path)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(SECRET_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)
            fsync_dir(path.parent)
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    secret = path.read_bytes()
    if len(secret) != SECRET_BYTES:
        raise IntegrityError(
            f"{path} holds {len(secret)} bytes, not a {SECRET_BYTES}-byte key secret",
            hint="restore it from the backup it was made with; without it no stored key opens",
        )
    return secret
