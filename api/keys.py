"""Our API keys: made here, shown once, stored hashed, found again by their prefix.

A key reads `rwv_<id>_<secret>`: `rwv_<id>` is its prefix, stored as it is so staff and logs can
name a key without knowing it; the whole key is stored only as its SHA-256. A key is 256 random
bits, so a fast hash is as good as a slow one (no guessing a key from its hash), and a lookup is
one indexed query and one constant-time comparison.
"""

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

KEY_SCHEME = "rwv"
_ID_BYTES = 4  # 8 hex digits name the key: no "_" in them, which separates the parts
_SECRET_BYTES = 32  # 256 bits: what makes the key unguessable
WEBHOOK_SECRET_BYTES = 24


@dataclass(frozen=True)
class NewKey:
    """A key just made: the key itself (shown once, never stored), its prefix and its hash."""

    key: str
    prefix: str
    hashed: str


def new_key() -> NewKey:
    prefix = f"{KEY_SCHEME}_{secrets.token_hex(_ID_BYTES)}"
    key = f"{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return NewKey(key, prefix, key_hash(key))


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str | None:
    """The prefix of something that looks like one of our keys; None for anything else."""
    scheme, _, rest = key.partition("_")
    identifier, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or len(identifier) != 8 or len(secret) < 40:
        return None
    return f"{scheme}_{identifier}"


def matches(key: str, hashed: str) -> bool:
    return hmac.compare_digest(key_hash(key), hashed)


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and base64 of random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode()
