from __future__ import annotations

import stat
from pathlib import Path

import pytest

from blocklists import key_of
from proxy_addon.tokens import ProceedToken, TokenError, load_or_create_secret, mint, verify

SECRET = b"s" * 32
KEY = key_of("leak.test/")


def test_round_trip() -> None:
    token = mint(SECRET, ProceedToken("addr:10.0.0.1", KEY, 2000))
    assert verify(SECRET, token, client="addr:10.0.0.1", now=1000) == ProceedToken("addr:10.0.0.1", KEY, 2000)


@pytest.mark.parametrize(
    ("secret", "client", "now", "message"),
    [
        (b"other secret of 32 bytes........", "addr:10.0.0.1", 1000, "bad signature"),
        (SECRET, "addr:10.0.0.2", 1000, "another client"),
        (SECRET, "addr:10.0.0.1", 2000, "expired"),
    ],
)
def test_refusals(secret: bytes, client: str, now: int, message: str) -> None:
    token = mint(SECRET, ProceedToken("addr:10.0.0.1", KEY, 2000))
    with pytest.raises(TokenError, match=message):
        verify(secret, token, client=client, now=now)


def test_a_tampered_payload_is_refused() -> None:
    token = mint(SECRET, ProceedToken("addr:10.0.0.1", KEY, 2000))
    _payload, signature = token.split(".")
    forged = mint(b"x" * 32, ProceedToken("addr:10.0.0.1", KEY, 99999)).split(".")[0]
    with pytest.raises(TokenError, match="bad signature"):
        verify(SECRET, f"{forged}.{signature}", client="addr:10.0.0.1", now=1000)


@pytest.mark.parametrize("junk", ["", "abc", "a.b.c", "!!!.???", "e30.e30"])
def test_junk_is_malformed_or_unsigned(junk: str) -> None:
    with pytest.raises(TokenError):
        verify(SECRET, junk, client="addr:10.0.0.1", now=0)


def test_secret_file_is_private_and_stable(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path)
    assert len(first) == 32
    assert stat.S_IMODE((tmp_path / "proceed.key").stat().st_mode) == 0o600
    assert load_or_create_secret(tmp_path) == first


def test_a_corrupt_secret_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "proceed.key").write_text("not hex")
    with pytest.raises(TokenError, match=r"proceed\.key does not hold a hex secret"):
        load_or_create_secret(tmp_path)
