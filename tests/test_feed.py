"""The feed format: signed raw bytes, bounded sizes, forward-only diffs, and old feeds carried on."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from blocklists import Action, Entry
from blocklists.feed import (
    MANIFEST,
    MANIFEST_MAGIC,
    MAX_MANIFEST,
    MAX_SIGNATURES,
    FeedError,
    FileRef,
    Manifest,
    _canonical_json,
    decode_diff,
    decode_snapshot,
    publish,
    sign_manifest,
    verify_manifest,
)

REF = FileRef("snapshot-3.jsonl.gz", "0" * 64, 10, 20)


def _manifest(**changes: object) -> Manifest:
    fields: dict[str, object] = {"feed_id": "f", "version": 3, "generated_at": 1, "expires_at": 2,
                                 "min_interval": 60, "hashed": False, "snapshot": REF, "entries": 0,
                                 "diffs": ()}  # fmt: skip
    return Manifest(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_manifest_round_trips_and_its_signature_covers_the_raw_payload() -> None:
    key = Ed25519PrivateKey.generate()
    manifest = _manifest(diffs=((2, 3, REF), (1, 2, REF)))
    data = sign_manifest(manifest, key)
    assert data.startswith(MANIFEST_MAGIC + b"\nsig ")
    assert verify_manifest(data, [key.public_key()]) == manifest
    reformatted = data.replace(b'"version": 3', b'"version":3')  # the same JSON, other bytes
    with pytest.raises(FeedError, match="bad signature"):
        verify_manifest(reformatted, [key.public_key()])
    with pytest.raises(FeedError, match="bad signature"):
        verify_manifest(data, [Ed25519PrivateKey.generate().public_key()])


def test_an_oversized_manifest_is_refused_before_anything_is_parsed() -> None:
    key = Ed25519PrivateKey.generate()
    data = sign_manifest(_manifest(), key)
    with pytest.raises(FeedError, match=f"more than the {MAX_MANIFEST} allowed"):
        verify_manifest(data + b" " * MAX_MANIFEST, [key.public_key()])


def test_a_format_1_manifest_is_named_as_such() -> None:
    with pytest.raises(FeedError, match="format 1"):
        verify_manifest(b'{"signed": {}, "signatures": []}', [Ed25519PrivateKey.generate().public_key()])


def test_only_so_many_signatures_are_tried() -> None:
    key = Ed25519PrivateKey.generate()
    data = sign_manifest(_manifest(), key)
    head, _, rest = data.partition(b"\n")
    bogus = b"".join(b"sig x " + base64.b64encode(bytes(64)) + b"\n" for _ in range(MAX_SIGNATURES))
    with pytest.raises(FeedError, match="bad signature"):  # the good one comes too late to count
        verify_manifest(head + b"\n" + bogus + rest, [key.public_key()])


@pytest.mark.parametrize(
    ("diffs", "message"),
    [
        (((2, 1, REF),), "goes from version 2 to 1, not forward"),
        (((1, 1, REF),), "goes from version 1 to 1"),
        (((2, 4, REF),), "not forward to at most 3"),
        (((1, 2, REF), (1, 3, REF)), "two diffs start at version 1"),
    ],
)
def test_diffs_only_go_forward(diffs: tuple[tuple[int, int, FileRef], ...], message: str) -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(FeedError, match=message):
        verify_manifest(sign_manifest(_manifest(diffs=diffs), key), [key.public_key()])


def test_a_chain_ends_or_is_missing_never_loops() -> None:
    manifest = _manifest(diffs=((1, 2, REF), (2, 3, REF)))
    assert manifest.chain(1) == [REF, REF]
    assert manifest.chain(3) == []
    assert _manifest(diffs=((1, 2, REF),)).chain(1) is None  # does not reach version 3
    looping = Manifest.__new__(Manifest)  # built without checks, as a buggy caller might
    object.__setattr__(looping, "version", 3)
    object.__setattr__(looping, "diffs", ((1, 2, REF), (2, 1, REF)))
    assert looping.chain(1) is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sha256", "zz" * 32, "64 hex digits"),
        ("size", -1, "out of range"),
        ("unpacked", 1 << 40, "out of range"),
        ("name", "../key.pem", "not a plain name"),
        ("name", ["a"], "expected a string"),
    ],
)
def test_file_references_are_checked(field: str, value: object, message: str) -> None:
    key = Ed25519PrivateKey.generate()
    document = _manifest().to_json()
    document["snapshot"][field] = value
    payload = json.dumps(document).encode()
    signature = base64.b64encode(key.sign(payload)).decode()
    data = MANIFEST_MAGIC + f"\nsig k {signature}\n\n".encode() + payload
    with pytest.raises(FeedError, match=message):
        verify_manifest(data, [key.public_key()])


def test_decompression_stops_at_the_signed_unpacked_size() -> None:
    bomb = gzip.compress(b"\n" * 50_000_000)  # 50 MB of nothing in some 50 KB
    started = time.perf_counter()
    with pytest.raises(FeedError, match="decompresses to more than the 1000 bytes stated"):
        decode_snapshot(bomb, "snapshot-1.jsonl.gz", unpacked=1000)
    assert time.perf_counter() - started < 0.5
    line = b'{"k": "' + b"ab" * 32 + b'", "a": "block", "t": 1}\n'
    with pytest.raises(FeedError, match=f"decompresses to {len(line)} bytes, the manifest says 999"):
        decode_diff(gzip.compress(line), "diff-1-2.jsonl.gz", unpacked=999)
    assert len(decode_diff(gzip.compress(line), "diff-1-2.jsonl.gz", unpacked=len(line))[0]) == 1


def test_deeply_nested_lines_are_a_clear_error() -> None:
    data = gzip.compress(b"[" * 100_000 + b"]" * 100_000 + b"\n")
    with pytest.raises(FeedError, match=r"snapshot-1\.jsonl\.gz:1: not a JSON line"):
        decode_snapshot(data, "snapshot-1.jsonl.gz")


def test_publish_carries_a_format_1_feed_on_to_format_2(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    listed = [Entry.listing("a.test/", Action.BLOCK, added_at=1)]
    first = publish(listed, tmp_path, key, now=100)
    # Rewrite the directory's manifest as linkwarn wrote it before format 2.
    signed = {**first.manifest.to_json(), "format": 1}
    for ref in [signed["snapshot"], *signed["diffs"]]:
        del ref["unpacked"]
    document = {"signed": signed, "signatures": [{"key": "k", "sig": base64.b64encode(
        key.sign(_canonical_json(signed))).decode()}]}  # fmt: skip
    (tmp_path / MANIFEST).write_text(json.dumps(document))
    again = publish(listed, tmp_path, key, now=200)
    assert again.new_version  # the same entries, but a format-1 manifest is republished as a version
    manifest = verify_manifest((tmp_path / MANIFEST).read_bytes(), [key.public_key()])
    assert manifest.version == 2
    assert manifest.snapshot.unpacked is not None
    assert all(ref.unpacked is not None for _, _, ref in manifest.diffs)


# -- fuzzing: any bytes, any signed JSON: a manifest or rows, or a FeedError, never a crash -----

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
_FUZZ_KEY = Ed25519PrivateKey.generate()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=2000))
def test_any_bytes_as_a_manifest_or_entry_file_are_a_feed_error(data: bytes) -> None:
    for decode in (
        lambda: verify_manifest(data, [_FUZZ_KEY.public_key()]),
        lambda: decode_snapshot(data, "snapshot-1.jsonl.gz", 5000),
        lambda: decode_diff(data, "diff-1-2.jsonl.gz"),
        lambda: decode_snapshot(gzip.compress(data), "snapshot-1.jsonl.gz", len(data)),
        lambda: decode_diff(gzip.compress(data), "diff-1-2.jsonl.gz", len(data)),
    ):
        with contextlib.suppress(FeedError):
            decode()


@settings(max_examples=300, deadline=None)
@given(
    document=_JSON,
    field=st.sampled_from(["format", "version", "snapshot", "diffs", "self_tests", "entries", "feed_id"]),
)
def test_any_signed_json_is_a_manifest_or_a_feed_error(document: object, field: str) -> None:
    payload = _manifest(diffs=((2, 3, REF),)).to_json()
    payload[field] = document  # one field replaced by anything
    for signed in (payload, document):
        data = json.dumps(signed).encode()
        signature = base64.b64encode(_FUZZ_KEY.sign(data)).decode()
        try:
            manifest = verify_manifest(
                MANIFEST_MAGIC + f"\nsig k {signature}\n\n".encode() + data, [_FUZZ_KEY.public_key()]
            )
        except FeedError:
            continue
        assert manifest.chain(1) is None or len(manifest.chain(1) or []) <= len(manifest.diffs)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(_JSON.map(json.dumps), max_size=10))
def test_any_json_lines_are_rows_or_a_feed_error(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines).encode()
    for decode in (decode_snapshot, decode_diff):
        with contextlib.suppress(FeedError):
            decode(gzip.compress(text), "f.jsonl.gz", len(text))  # type: ignore[operator]
