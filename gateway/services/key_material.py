"""Gateway key format and hashing: dom_<public id>_<secret>, stored only as an argon2id hash.

Parameters (argon2id, t=2, m=19 MiB, p=1) are OWASP's baseline for argon2id. The secret is 256
random bits, so the hash guards against a leaked database, not a guessable password; the cost
is paid once per key per process thanks to the verified-key cache.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import Type

KEY_PREFIX = "dom_"
PUBLIC_ID_LENGTH = 12
SECRET_BYTES = 32
KEY_PATTERN = re.compile(r"^dom_([a-z0-9]{12})_([A-Za-z0-9_\-]{43,128})$")
ARGON2_PARAMS = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1, "hash_len": 32,
                 "salt_len": 16, "type": Type.ID}

# The stored key check: the first 32 bits of sha256(key). A wrong secret fails it without argon2 (all but
# one in 4 billion); the 224 bits it leaves hidden are far beyond any brute force of a leaked database.
KEY_CHECK_HEX_CHARS = 8

_hasher = PasswordHasher(**ARGON2_PARAMS)
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def generate_key() -> tuple[str, str]:
    """A new (public_id, plaintext key); the plaintext is shown once and never stored."""
    public_id = "".join(secrets.choice(_ALPHABET) for _ in range(PUBLIC_ID_LENGTH))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return public_id, f"{KEY_PREFIX}{public_id}_{secret}"


def parse_public_id(presented: str) -> str | None:
    """The public id of a well-formed key, or None."""
    match = KEY_PATTERN.match(presented or "")
    return match.group(1) if match else None


def hash_key(plaintext: str) -> str:
    """argon2id hash of the whole key."""
    return _hasher.hash(plaintext)


def verify_key(key_hash: str, presented: str) -> bool:
    """Constant-time argon2 verification; False on any mismatch or malformed hash."""
    try:
        return _hasher.verify(key_hash, presented)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def key_check(presented: str) -> str:
    """The short check stored next to the hash (see KEY_CHECK_HEX_CHARS)."""
    return hashlib.sha256(presented.encode()).hexdigest()[:KEY_CHECK_HEX_CHARS]


def passes_check(stored_check: str | None, presented: str) -> bool:
    """False when the presented key cannot be the one stored (costs one sha256, never argon2); True when
    it may be (argon2 decides) or the key predates checks."""
    return stored_check is None or hmac.compare_digest(stored_check, key_check(presented))


def display_prefix(public_id: str) -> str:
    """The part of a key that is safe to show: dom_<public id>."""
    return f"{KEY_PREFIX}{public_id}"
