from __future__ import annotations

import stat
from pathlib import Path

import pytest

from blocklists import key_of
from proxy_addon.tokens import Purpose, SecretError, Token, TokenError, load_or_create_secret, mint, verify

SECRET = b"s" * 32
KEY = key_of("leak.test/")


def ProceedToken(client: str, key: bytes, expires: int) -> Token:
    return Token(Purpose.PASS, client, key, expires)


def test_round_trip() -> None:
    token = Token(
        Purpose.TICKET, "addr:10.0.0.1", KEY, 2000, issued_ms=999_000, url="https://leak.test/", nonce="n"
    )
    assert (
        verify(SECRET, mint(SECRET, token), purpose=Purpose.TICKET, client="addr:10.0.0.1", now=1000) == token
    )


@pytest.mark.parametrize("purpose", list(Purpose))
def test_no_purpose_stands_in_for_another(purpose: Purpose) -> None:
    token = mint(SECRET, Token(purpose, "addr:10.0.0.1", KEY, 2000))
    for other in Purpose:
        if other is not purpose:
            with pytest.raises(TokenError, match=f"a {purpose} token, not a {other} token"):
                verify(SECRET, token, purpose=other, client="addr:10.0.0.1", now=1000)


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
        verify(secret, token, purpose=Purpose.PASS, client=client, now=now)


def test_a_tampered_payload_is_refused() -> None:
    token = mint(SECRET, ProceedToken("addr:10.0.0.1", KEY, 2000))
    _payload, signature = token.split(".")
    forged = mint(b"x" * 32, ProceedToken("addr:10.0.0.1", KEY, 99999)).split(".")[0]
    with pytest.raises(TokenError, match="bad signature"):
        verify(SECRET, f"{forged}.{signature}", purpose=Purpose.PASS, client="addr:10.0.0.1", now=1000)


@pytest.mark.parametrize("junk", ["", "abc", "a.b.c", "!!!.???", "e30.e30"])
def test_junk_is_malformed_or_unsigned(junk: str) -> None:
    with pytest.raises(TokenError):
        verify(SECRET, junk, purpose=Purpose.PASS, client="addr:10.0.0.1", now=0)


def test_secret_file_is_private_and_stable(tmp_path: Path) -> None:
    first = load_or_create_secret(tmp_path)
    assert len(first) == 32
    assert stat.S_IMODE((tmp_path / "proceed.key").stat().st_mode) == 0o600
    assert load_or_create_secret(tmp_path) == first


@pytest.mark.parametrize("content", ["", "not hex", "abcd", "\n\n", "0" * 30])
def test_an_empty_short_or_corrupt_secret_file_is_replaced(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "proceed.key").write_text(content)
    secret = load_or_create_secret(tmp_path)
    assert len(secret) == 32
    assert (tmp_path / "proceed.key").read_text().strip() == secret.hex()
    assert stat.S_IMODE((tmp_path / "proceed.key").stat().st_mode) == 0o600
    assert "replacing it" in caplog.text


def test_a_secret_readable_by_others_is_made_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "proceed.key"
    path.write_text("ab" * 32)
    path.chmod(0o644)
    assert load_or_create_secret(tmp_path) == bytes.fromhex("ab" * 32)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "readable by others" in caplog.text


def test_an_unreadable_secret_file_is_refused_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "proceed.key").mkdir()  # exists, cannot be read as a file
    with pytest.raises(SecretError, match="cannot be read"):
        load_or_create_secret(tmp_path)
