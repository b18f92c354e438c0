"""Signed tokens: what the proxy hands out so that a person's decision can travel.

Every token is an HMAC-SHA256 over a small JSON payload and names its
`Purpose`, so one kind can never stand in for another (a report token is never
a pass). Each binds the client (address, or proxy-auth user), the key of the
entry that warned, and an expiry; some also bind a URL, the time they were
issued and a one-time nonce. Any proxy that shares the secret accepts them, so
a fleet behind a load balancer honours what any member minted.

    TICKET  the warning page on linkwarn's own origin: which URL and entry to show
    PROCEED the page's Proceed form: only the own origin's page carries it
    CODE    one-time, short-lived: carries the pass to the listed origin in a redirect
    PASS    the HttpOnly cookie on the listed origin, until the proceed time ends
    REPORT  the page's "report a mistake" form
    SHARE_TICKET, SHARE_SEND, SHARE_CODE   the same three steps for a post held back for its links

Secrets live in the data directory, created readable by their owner only; an
empty, short or malformed secret file is replaced with a new one (and logged).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = [
    "MIN_SECRET_BYTES",
    "Purpose",
    "SecretError",
    "Token",
    "TokenError",
    "load_or_create_secret",
    "mint",
    "verify",
]

logger = logging.getLogger(__name__)

MIN_SECRET_BYTES = 16
SECRET_FILE = "proceed.key"  # noqa: S105 - a file name, not a secret
MAX_TOKEN_LENGTH = 64 * 1024


class Purpose(StrEnum):
    TICKET = "ticket"
    PROCEED = "proceed"
    CODE = "code"
    PASS = "pass"  # noqa: S105 - a token purpose, not a password
    REPORT = "report"
    SHARE_TICKET = "share-ticket"  # the share warning page for a held post
    SHARE_SEND = "share-send"  # the page's "Send anyway" form
    SHARE_CODE = "share-code"  # one-time: carries "Send anyway" back to the post's own origin


class TokenError(ValueError):
    """A token that is malformed, forged, expired, of another purpose or not this client's."""


class SecretError(ValueError):
    """A secret that cannot be read or is too weak to use."""


@dataclass(frozen=True, slots=True)
class Token:
    purpose: Purpose
    client: str
    entry_key: bytes
    expires_at: int
    issued_ms: int = 0  # when it was minted, in milliseconds since the epoch
    url: str = ""
    nonce: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(secret: bytes, token: Token) -> str:
    """The token as URL- and header-safe text (base64url and one dot)."""
    payload = json.dumps(
        {
            "v": 2,
            "p": str(token.purpose),
            "c": token.client,
            "k": token.entry_key.hex(),
            "e": token.expires_at,
            "i": token.issued_ms,
            "u": token.url,
            "n": token.nonce,
        },
        separators=(",", ":"),
    ).encode()
    signature = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def verify(secret: bytes, text: str, *, purpose: Purpose, client: str, now: float) -> Token:
    """The token, if it is genuine, of *purpose*, unexpired and this client's; else TokenError."""
    if not text or len(text) > MAX_TOKEN_LENGTH or not text.isascii():
        raise TokenError("malformed token")
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
        token = Token(
            purpose=Purpose(fields["p"]),
            client=str(fields["c"]),
            entry_key=bytes.fromhex(fields["k"]),
            expires_at=int(fields["e"]),
            issued_ms=int(fields.get("i", 0)),
            url=str(fields.get("u", "")),
            nonce=str(fields.get("n", "")),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TokenError("malformed token") from None
    if token.purpose is not purpose:
        raise TokenError(f"a {token.purpose} token, not a {purpose} token")
    if token.expires_at <= now:
        raise TokenError("expired")
    if not hmac.compare_digest(token.client.encode(), client.encode()):
        raise TokenError("minted for another client")
    return token


def new_nonce() -> str:
    return secrets.token_urlsafe(12)


def write_private(path: Path, text: str) -> None:
    """Write *text* to *path* readable by its owner only, replacing it atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def load_or_create_secret(data_dir: Path, name: str = SECRET_FILE) -> bytes:
    """The data directory's secret *name*: created (mode 0600) on first use.

    A file that is empty, not hex or shorter than `MIN_SECRET_BYTES` is replaced
    with a new secret, and the replacement is logged; a file that exists but
    cannot be read raises `SecretError` (replacing it would hide the problem).
    A file readable by others is made private, and that is logged too.
    """
    path = data_dir / name
    try:
        text = path.read_text("ascii").strip()
    except FileNotFoundError:
        text = None
    except (OSError, UnicodeDecodeError) as exc:
        if not isinstance(exc, UnicodeDecodeError):
            raise SecretError(f"{path} cannot be read: {exc}") from None
        text = ""
    if text is not None:
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            secret = b""
        if len(secret) >= MIN_SECRET_BYTES:
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                os.chmod(path, 0o600)
                logger.warning(
                    "linkwarn: %s was readable by others; it is now readable by its owner only", path
                )
            return secret
        logger.warning(
            "linkwarn: %s held no usable secret (empty, not hex, or under %d bytes); replacing it",
            path,
            MIN_SECRET_BYTES,
        )
    secret = secrets.token_bytes(32)
    write_private(path, secret.hex() + "\n")
    return secret


def secret_from_text(text: str, where: str) -> bytes:
    """A fleet secret given as text (an option, a file, the environment); SecretError if too short."""
    value = text.strip()
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise SecretError(f"{where} must be at least {MIN_SECRET_BYTES} characters")
    return value.encode()
