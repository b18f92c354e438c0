"""Proceed tokens: an HMAC-signed pass through one warning, for one client, for a while.

A token binds the client (address, or proxy-auth user), the key of the entry
that warned, and an expiry. Any proxy that shares the secret accepts it, so a
fleet behind a load balancer honours a pass minted by any member. The token
says nothing about the URL itself: whether a URL is within its scope is decided
by matching the URL again and comparing the winning entry's key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MIN_SECRET_BYTES", "ProceedToken", "TokenError", "load_or_create_secret", "mint", "verify"]

MIN_SECRET_BYTES = 16
SECRET_FILE = "proceed.key"  # noqa: S105 - a file name, not a secret


class TokenError(ValueError):
    """A token that is malformed, forged, expired or not this client's."""


@dataclass(frozen=True, slots=True)
class ProceedToken:
    client: str
    entry_key: bytes
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(secret: bytes, token: ProceedToken) -> str:
    payload = json.dumps(
        {"v": 1, "c": token.client, "k": token.entry_key.hex(), "e": token.expires_at},
        separators=(",", ":"),
    ).encode()
    signature = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def verify(secret: bytes, text: str, *, client: str, now: float) -> ProceedToken:
    """The token's contents, if it is genuine, unexpired and this client's; else TokenError."""
    try:
        encoded, encoded_signature = text.split(".")
        payload, signature = _unb64(encoded), _unb64(encoded_signature)
    except (ValueError, binascii.Error):
        raise TokenError("malformed token") from None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise TokenError("bad signature")
    try:
        fields = json.loads(payload)
        token = ProceedToken(str(fields["c"]), bytes.fromhex(fields["k"]), int(fields["e"]))
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed token") from None
    if token.expires_at <= now:
        raise TokenError("expired")
    if not hmac.compare_digest(token.client.encode(), client.encode()):
        raise TokenError("minted for another client")
    return token


def load_or_create_secret(data_dir: Path, name: str = SECRET_FILE) -> bytes:
    """The data directory's secret *name*, created (mode 0600) on first use."""
    path = data_dir / name
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise TokenError(f"{path} does not hold a hex secret; delete it to make a new one") from None
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret.hex() + "\n")
    return secret
