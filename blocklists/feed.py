"""The shared feed: a directory of static files that IT signs and every proxy checks.

    manifest.json            signature lines, a blank line, then the signed JSON (below)
    snapshot-<v>.jsonl.gz    every entry of version v, one JSON object a line
    diff-<a>-<b>.jsonl.gz    what changed from version a to b

The manifest (format 2) is checked before it is parsed, as TUF's client
workflow asks: the file is at most `MAX_MANIFEST` bytes, and its signatures
cover its raw payload bytes, so a proxy verifies them before any JSON parsing
or decompression::

    linkwarn-manifest 2
    sig <key id> <base64 Ed25519 signature over the payload bytes>
    <blank line>
    {"format": 2, "feed_id": ..., "version": ..., "snapshot": {...}, "diffs": [...], ...}

Each file the payload names carries its SHA-256, its size and its
decompressed size (``unpacked``), so a download is bounded by the size the
signed manifest states and its decompression by the size it unpacks to. A diff
goes from a version to a later one, never past the manifest's own, so a chain
of diffs cannot loop. (Format 1, a JSON document whose signature covered a
re-serialization of its ``signed`` object, is read only by ``publish``, from
the local directory, to carry an old feed on to format 2.)

An entry line: ``k`` key (hex), ``a`` action, ``t`` added, and when set ``e``
expression (not in a hashed feed), ``m`` the host marker (in a hashed feed:
`entry.host_marker`, 16 hex digits, so a proxy knows which hosts to decrypt
without learning which paths are listed), ``r`` reason, ``c`` category, ``i``
incident, ``x`` expiry, ``q`` true when proceeding needs a typed reason
(absent means false). A diff line ``{"op": "del", "k": ...}`` removes a key.

The manifest names every other file with its SHA-256, so one Ed25519
signature over it covers the whole version. It also carries the feed's id, a
version that only goes up, when it was made and when it expires, the minimum
poll interval, and self-tests (URLs that must and must not match) that a proxy
runs on a candidate list before it uses it. A hashed feed carries no
expression and no self-test URL in plaintext: only SHA-256 keys.

Publishing writes the entry files first and the manifest last, each by
rename, so a reader sees the old version or the new one, never half of one.
Publishing unchanged sources makes no new version; it re-signs the same
version with a later expiry, so a feed that IT keeps publishing never goes stale.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import os
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .canonical import canonicalize_traced, expressions, expressions_of
from .entry import MARKER_BYTES, Action, Entry, EntryRow, key_of, marker_of
from .errors import InvalidURL, LinkwarnError
from .matching import decide

__all__ = [
    "FORMAT",
    "MANIFEST",
    "FeedError",
    "FileRef",
    "Manifest",
    "SelfTest",
    "decode_diff",
    "decode_snapshot",
    "generate_keys",
    "iter_snapshot",
    "load_private_key",
    "parse_public_key",
    "public_key_text",
    "publish",
    "read_self_tests",
    "self_test_matches",
    "sign_manifest",
    "split_manifest",
    "verify_manifest",
]

FORMAT = 2
MANIFEST = "manifest.json"
MANIFEST_MAGIC = b"linkwarn-manifest 2"
MAX_MANIFEST = 1 << 20  # bytes: a manifest names ten diffs and a few self-tests, a few KB
MAX_SIGNATURES = 16  # checked at most: many bogus signatures must not cost minutes
MAX_FILE = 4 << 30  # bytes a signed manifest may claim for one file, packed or unpacked
MAX_SELF_TESTS = 1000
MAX_DIFFS = 10
DEFAULT_MIN_INTERVAL = 300
KEY_PREFIX = "ed25519:"


class FeedError(LinkwarnError):
    """A feed that cannot be used: forged, tampered, older, malformed or unreachable."""


# -- keys ---------------------------------------------------------------------


def generate_keys() -> tuple[bytes, str]:
    """A new key pair: the private key as PEM, the public key as ``ed25519:<base64>``."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, public_key_text(private.public_key())


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return KEY_PREFIX + base64.b64encode(raw).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for a public key: the first 16 hex digits of its SHA-256."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def parse_public_key(text: str) -> Ed25519PublicKey:
    """``ed25519:<base64>``, or the path of a file holding it. Raises FeedError."""
    value = text.strip()
    if not value.startswith(KEY_PREFIX):
        path = Path(value).expanduser()
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise FeedError(
                f"feed key {text!r} is neither 'ed25519:<base64>' nor a readable file: {exc}"
            ) from None
        if not value.startswith(KEY_PREFIX):
            raise FeedError(f"{path} does not hold an 'ed25519:<base64>' public key")
    try:
        raw = base64.b64decode(value[len(KEY_PREFIX) :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise FeedError(f"{text!r} is not a valid Ed25519 public key") from None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise FeedError(f"cannot read the private key {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError):
        raise FeedError(f"{path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise FeedError(f"{path} is not an Ed25519 private key")
    return key


# -- the manifest -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileRef:
    name: str
    sha256: str
    size: int
    unpacked: int | None = None  # decompressed bytes; None only in a format-1 manifest read by publish

    def check(self, data: bytes | Sequence[bytes]) -> None:
        """Raise FeedError unless *data* (whole, or in the chunks it arrived in) is this file, untouched."""
        chunks = [data] if isinstance(data, bytes) else data
        size = sum(map(len, chunks))
        if size != self.size:
            raise FeedError(f"{self.name}: got {size} bytes, the manifest says {self.size} (truncated?)")
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
        if digest.hexdigest() != self.sha256:
            raise FeedError(f"{self.name}: SHA-256 does not match the manifest (tampered?)")


@dataclass(frozen=True, slots=True)
class SelfTest:
    """A URL that must (or must not) match: by URL, or in a hashed feed by its expressions' keys."""

    expect_match: bool
    url: str | None = None
    keys: tuple[bytes, ...] = ()

    def lookup_keys(self) -> list[tuple[str, bytes]]:
        if self.url is not None:
            return [(expression, key_of(expression)) for expression in expressions(self.url)]
        return [(key.hex(), key) for key in self.keys]

    def describe(self) -> str:
        label = self.url or f"a hashed test of {len(self.keys)} expressions"
        return f"{label} should {'' if self.expect_match else 'not '}match"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"expect": "match" if self.expect_match else "no-match"}
        if self.url is not None:
            out["url"] = self.url
        else:
            out["keys"] = [key.hex() for key in self.keys]
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    feed_id: str
    version: int
    generated_at: int
    expires_at: int
    min_interval: int
    hashed: bool
    snapshot: FileRef
    entries: int
    diffs: tuple[tuple[int, int, FileRef], ...] = ()  # (from version, to version, file)
    self_tests: tuple[SelfTest, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "feed_id": self.feed_id,
            "version": self.version,
            "generated_at": self.generated_at,
            "expires_at": self.expires_at,
            "min_interval": self.min_interval,
            "hashed": self.hashed,
            "entries": self.entries,
            "snapshot": _ref_json(self.snapshot),
            "diffs": [{"from": a, "to": b, **_ref_json(ref)} for a, b, ref in self.diffs],
            "self_tests": [test.to_json() for test in self.self_tests],
        }

    @classmethod
    def from_json(cls, data: Any, *, legacy: bool = False) -> Manifest:
        """The manifest in *data*, checked for shape; *legacy* reads format 1 (publish only)."""
        try:
            want = 1 if legacy else FORMAT
            if data["format"] != want:
                raise FeedError(
                    f"feed format {data['format']!r} is not supported (this linkwarn reads {want})"
                )
            if len(data["self_tests"]) > MAX_SELF_TESTS or len(data["diffs"]) > MAX_DIFFS * 10:
                raise ValueError("too many self-tests or diffs")
            tests = []
            for test in data["self_tests"]:
                expect = {"match": True, "no-match": False}[test["expect"]]
                if "url" in test:
                    tests.append(SelfTest(expect, url=str(test["url"])))
                else:
                    tests.append(SelfTest(expect, keys=tuple(bytes.fromhex(k) for k in test["keys"])))
            manifest = cls(
                feed_id=_str(data["feed_id"]),
                version=_int(data["version"]),
                generated_at=_int(data["generated_at"]),
                expires_at=_int(data["expires_at"]),
                min_interval=_int(data["min_interval"]),
                hashed=bool(data["hashed"]),
                snapshot=_ref(data["snapshot"], legacy),
                entries=_int(data["entries"]),
                diffs=tuple((_int(d["from"]), _int(d["to"]), _ref(d, legacy)) for d in data["diffs"]),
                self_tests=tuple(tests),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FeedError(f"malformed manifest: {type(exc).__name__} {exc}") from None
        manifest.check_diffs()
        return manifest

    def check_diffs(self) -> None:
        """Raise FeedError unless every diff goes forward, to at most this version, one per start."""
        starts = set()
        for a, b, ref in self.diffs:
            if not 1 <= a < b <= self.version:
                raise FeedError(
                    f"malformed manifest: diff {ref.name} goes from version {a} to {b}, "
                    f"not forward to at most {self.version}"
                )
            if a in starts:
                raise FeedError(f"malformed manifest: two diffs start at version {a}")
            starts.add(a)

    def chain(self, have: int) -> list[FileRef] | None:
        """The diffs that lead from version *have* to this one, or None when there is no such chain.

        Each step goes to a later version (`check_diffs`), so the walk ends
        within as many steps as there are diffs: a chain cannot loop.
        """
        steps = {a: (b, ref) for a, b, ref in self.diffs}
        chain: list[FileRef] = []
        at = have
        for _ in range(len(self.diffs) + 1):
            if at == self.version:
                return chain
            if at not in steps or steps[at][0] <= at:
                return None
            at, ref = steps[at]
            chain.append(ref)
        return None


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _size(value: Any) -> int:
    size = _int(value)
    if not 0 <= size <= MAX_FILE:
        raise ValueError(f"a file size of {size} bytes is out of range (0 to {MAX_FILE})")
    return size


_HEX = frozenset("0123456789abcdef")


def _ref(data: Any, legacy: bool = False) -> FileRef:
    name = _str(data["name"])
    if not name or len(name) > 200 or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"file name {name!r} is not a plain name in the feed directory")
    sha256 = _str(data["sha256"])
    if len(sha256) != 64 or not _HEX.issuperset(sha256):
        raise ValueError(f"the SHA-256 of {name!r} is not 64 hex digits")
    unpacked = None if legacy else _size(data["unpacked"])
    return FileRef(name, sha256, _size(data["size"]), unpacked)


def _ref_json(ref: FileRef) -> dict[str, Any]:
    out: dict[str, Any] = {"name": ref.name, "sha256": ref.sha256, "size": ref.size}
    if ref.unpacked is not None:
        out["unpacked"] = ref.unpacked
    return out


def _canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign_manifest(manifest: Manifest, key: Ed25519PrivateKey) -> bytes:
    """The manifest file: its signature line over the exact payload bytes that follow it."""
    payload = json.dumps(manifest.to_json(), indent=1, sort_keys=True, ensure_ascii=True).encode() + b"\n"
    signature = base64.b64encode(key.sign(payload)).decode()
    header = f"sig {key_id(key.public_key())} {signature}\n".encode()
    return MANIFEST_MAGIC + b"\n" + header + b"\n" + payload


def split_manifest(data: bytes) -> tuple[list[bytes], bytes]:
    """The signatures and the payload of a manifest file, read without parsing any JSON."""
    if len(data) > MAX_MANIFEST:
        raise FeedError(f"malformed manifest: {len(data)} bytes, more than the {MAX_MANIFEST} allowed")
    if data.lstrip().startswith(b"{"):
        raise FeedError(
            "malformed manifest: format 1 (a JSON document); this linkwarn reads format 2: "
            "republish the feed with this linkwarn"
        )
    head, separator, payload = data.partition(b"\n\n")
    lines = head.split(b"\n")
    if not separator or lines[0].rstrip(b"\r") != MANIFEST_MAGIC:
        raise FeedError("malformed manifest: not a signed linkwarn manifest (format 2)")
    signatures = []
    for line in lines[1 : 1 + MAX_SIGNATURES]:
        word, _, rest = line.partition(b" ")
        _, _, signature = rest.partition(b" ")
        if word == b"sig" and signature:
            signatures.append(signature.strip())
    return signatures, payload


def verify_manifest(data: bytes, keys: Sequence[Ed25519PublicKey]) -> Manifest:
    """The manifest, if a pinned key signed its raw bytes. Raises FeedError naming what is wrong.

    Size and signatures are checked before a byte of JSON is parsed; only a
    payload a pinned key signed is parsed, and then checked for shape.
    """
    signatures, payload = split_manifest(data)
    for key in keys:
        for signature in signatures:
            try:
                key.verify(base64.b64decode(signature, validate=True), payload)
            except (InvalidSignature, binascii.Error, ValueError):
                continue
            return Manifest.from_json(_parse_payload(payload))
    raise FeedError("bad signature: the manifest is not signed by a pinned key")


def _parse_payload(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as exc:
        kind = type(exc).__name__
        raise FeedError(f"malformed manifest: the signed payload is not JSON ({kind})") from None


def _read_local_manifest(data: bytes, key: Ed25519PublicKey) -> Manifest:
    """A manifest publish wrote before, format 2 or format 1 (to carry an old feed on)."""
    if not data.lstrip().startswith(b"{"):
        return verify_manifest(data, [key])
    try:
        document = json.loads(data)
        signed = document["signed"]
        signatures = document["signatures"]
        for signature in signatures:
            with suppress(InvalidSignature, binascii.Error, KeyError, TypeError, ValueError):
                key.verify(base64.b64decode(signature["sig"], validate=True), _canonical_json(signed))
                return Manifest.from_json(signed, legacy=True)
    except (ValueError, KeyError, TypeError, RecursionError):
        raise FeedError("malformed manifest: not a signed linkwarn manifest") from None
    raise FeedError("bad signature: the manifest is not signed by this key")


# -- entry files --------------------------------------------------------------


_ACTIONS = frozenset(str(action) for action in Action)


def _row_json(row: EntryRow, hashed: bool) -> dict[str, Any]:
    key, expression, action, reason, category, incident, added_at, expires_at, require_reason, marker = row
    out: dict[str, Any] = {"k": key.hex(), "a": action, "t": added_at}
    if expression is not None and not hashed:
        out["e"] = expression
    elif marker is not None:
        out["m"] = marker.hex()
    out.update({name: value for name, value in (("r", reason), ("c", category), ("i", incident)) if value})
    if expires_at is not None:
        out["x"] = expires_at
    if require_reason:
        out["q"] = True  # absent means false: feeds from before the field still read the same
    return out


def _row(item: dict[str, Any]) -> EntryRow:
    # Runs once per entry of a snapshot: plain type() tests and no generator keep
    # it at a third of the cost of the obvious version (a million calls per sync).
    get = item.get
    key = bytes.fromhex(item["k"])
    action, expression, added_at, expires_at = item["a"], get("e"), get("t", 0), get("x")
    reason, category, incident, require_reason = get("r", ""), get("c", ""), get("i", ""), get("q", False)
    if len(key) != 32 or action not in _ACTIONS or type(require_reason) is not bool:
        raise ValueError(f"bad entry {item['k']!r}")
    if type(reason) is not str or type(category) is not str or type(incident) is not str:
        raise ValueError(f"bad entry {item['k']!r}")
    if type(added_at) is not int or not (expires_at is None or type(expires_at) is int):
        raise ValueError(f"bad times in entry {item['k']!r}")
    if expression is not None:
        if type(expression) is not str:
            raise ValueError(f"bad expression in entry {item['k']!r}")
        marker = marker_of(expression)
    elif (published := get("m")) is not None:
        if type(published) is not str or len(published) != 2 * MARKER_BYTES:
            raise ValueError(f"bad host marker in entry {item['k']!r}")
        marker = bytes.fromhex(published)
    else:
        marker = None
    return (key, expression, action, reason, category, incident, added_at, expires_at, require_reason, marker)


_PIECE = 1 << 15  # compressed bytes per step: about 100 KB of lines to parse at a time


Data = bytes | Iterable[bytes]  # a file whole, or in the chunks it arrives in


def _text_pieces(data: Data, name: str, unpacked: int | None = None) -> Iterator[bytes]:
    """The decompressed text of a gzip'd file, in pieces that end at a line end.

    Incremental on purpose: this runs off the event loop, and gzip.decompress
    ends with one join of the whole output, a memcpy of some 130 MB for a
    million entries that holds the GIL, and so stalls the proxy, for 50-80 ms.

    Bounded: with *unpacked* (the decompressed size the signed manifest
    states) never more than that many bytes are produced, one more is an
    error, and so is fewer; a gzip bomb stops at the first byte too many.
    """
    decompressor = zlib.decompressobj(wbits=31)  # gzip header and trailer, checked
    pending = b""
    total = 0
    limit = MAX_FILE if unpacked is None else unpacked
    try:
        for chunk in [data] if isinstance(data, bytes) else data:
            view = memoryview(chunk)
            for start in range(0, len(chunk), _PIECE):
                piece: bytes | memoryview = view[start : start + _PIECE]
                while piece:
                    out = decompressor.decompress(piece, max(_PIECE * 8, 1))
                    piece = decompressor.unconsumed_tail
                    total += len(out)
                    if total > limit:
                        raise FeedError(f"{name}: decompresses to more than the {limit} bytes stated")
                    pending += out
                    cut = pending.rfind(b"\n")
                    if cut >= 0:
                        yield pending[: cut + 1]
                        pending = pending[cut + 1 :]
                    if decompressor.eof:
                        break
        tail = decompressor.flush()
        total += len(tail)
        pending += tail
    except zlib.error as exc:
        raise FeedError(f"{name}: not a gzip file ({exc})") from None
    if not decompressor.eof:
        raise FeedError(f"{name}: the gzip data ends early (truncated)")
    if total > limit or (unpacked is not None and total != unpacked):
        raise FeedError(f"{name}: decompresses to {total} bytes, the manifest says {limit}")
    if pending.strip():
        yield pending


def _item_chunks(data: Data, name: str, unpacked: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """The JSON lines of a gzip'd entry file, about 100 KB of them at a time.

    Chunked on purpose too: one json.loads over a million lines would hold the
    GIL for most of a second.
    """
    line = 1
    for piece in _text_pieces(data, name, unpacked):
        chunk = piece.strip()
        if chunk:
            try:
                yield json.loads(b"[" + chunk.replace(b"\n", b",") + b"]")
            except (ValueError, RecursionError):
                for number, text in enumerate(chunk.split(b"\n"), line):
                    try:
                        json.loads(text)
                    except (ValueError, RecursionError):
                        raise FeedError(f"{name}:{number}: not a JSON line") from None
                raise FeedError(f"{name}: not JSON lines") from None
        line += piece.count(b"\n")


def _items(data: Data, name: str, unpacked: int | None = None) -> list[dict[str, Any]]:
    return [item for chunk in _item_chunks(data, name, unpacked) for item in chunk]


def iter_snapshot(data: Data, name: str, unpacked: int | None = None) -> Iterator[EntryRow]:
    """A snapshot's rows, streamed in key order (a snapshot out of order is malformed).

    Streaming lets a consumer in another thread parse, insert and free a chunk at
    a time: no list of a million rows is built, or freed, on the event loop.
    """
    previous = b""
    try:
        for chunk in _item_chunks(data, name, unpacked):
            for item in chunk:
                row = _row(item)
                if row[0] <= previous:
                    raise FeedError(f"{name}: entries out of key order at {row[0].hex()}")
                previous = row[0]
                yield row
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FeedError(f"{name}: malformed entry ({exc})") from None


def decode_snapshot(data: bytes, name: str, unpacked: int | None = None) -> list[EntryRow]:
    """The entries of a snapshot file, as rows. Raises FeedError naming the file."""
    return list(iter_snapshot(data, name, unpacked))


def decode_diff(data: Data, name: str, unpacked: int | None = None) -> tuple[list[EntryRow], list[bytes]]:
    """A diff file: the rows to add or replace, and the keys to remove (at most *unpacked* bytes of text)."""
    upserts: list[EntryRow] = []
    removals: list[bytes] = []
    try:
        for item in _items(data, name, unpacked):
            if item.get("op") == "del":
                key = bytes.fromhex(item["k"])
                if len(key) != 32:
                    raise ValueError(f"bad key {item['k']!r}")
                removals.append(key)
            else:
                upserts.append(_row(item))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FeedError(f"{name}: malformed entry ({exc})") from None
    return upserts, removals


def _keep_added(new: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """An entry that did not change keeps the time it was first published."""
    if old is not None and {**new, "t": old.get("t")} == old:
        return old
    return new


def _gzip_lines(items: Iterable[dict[str, Any]]) -> tuple[bytes, int]:
    """The gzip'd JSON lines, and how many bytes they unpack to."""
    text = "".join(json.dumps(item, sort_keys=True, separators=(",", ":")) + "\n" for item in items).encode()
    return gzip.compress(text, compresslevel=6, mtime=0), len(text)


def _file_ref(name: str, data: bytes, unpacked: int) -> FileRef:
    return FileRef(name, hashlib.sha256(data).hexdigest(), len(data), unpacked)


# -- publishing -----------------------------------------------------------------


def read_self_tests(path: Path) -> list[tuple[bool, str]]:
    """A self-test file: ``match URL`` or ``no-match URL`` per line, ``#`` for comments."""
    tests = []
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise FeedError(f"cannot read self-tests {path}: {exc.strerror or exc}") from None
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, url = line.partition(" ")
        if word not in ("match", "no-match") or not url.strip():
            raise FeedError(f"{path}:{number}: expected 'match URL' or 'no-match URL'")
        try:
            expressions(url.strip())
        except InvalidURL as exc:
            raise FeedError(f"{path}:{number}: {exc}") from None
        tests.append((word == "match", url.strip()))
    return tests


@dataclass(frozen=True, slots=True)
class PublishResult:
    version: int
    new_version: bool
    entries: int
    added: int
    removed: int
    manifest: Manifest


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with temporary.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def self_test_matches(test: SelfTest, found: Mapping[bytes, Sequence[Entry]], now: float) -> bool:
    """Whether *test*'s URL matches, given the entries *found* for its keys (allow is no match)."""
    pairs = test.lookup_keys()
    hits = [(expression, key) for expression, key in pairs if key in found]
    if test.url is not None:
        canonical = canonicalize_traced(test.url)
        verdict = decide(test.url, canonical, expressions_of(canonical), hits, found, now)
        return verdict.action not in (None, Action.ALLOW)
    live = [entry for _, key in hits for entry in found[key] if entry.is_live(now)]
    return any(entry.action is not Action.ALLOW for entry in live)


def _refuse_plaintext(entries: Sequence[Entry]) -> None:
    """A hashed feed must not spell an address out in an entry's reason, category or incident."""
    for entry in entries:
        if entry.expression is None:
            continue
        host = entry.expression.split("/", 1)[0]
        for name, text in (
            ("reason", entry.reason),
            ("category", entry.category),
            ("incident", entry.incident),
        ):
            if host in text.lower():
                raise FeedError(
                    f"the {name} of {entry.expression} names {host}, which a hashed feed would then "
                    "publish in plaintext: reword it"
                )


def publish(
    entries: Sequence[Entry],
    out_dir: Path,
    key: Ed25519PrivateKey,
    *,
    now: int,
    hashed: bool = False,
    expires_in: int = 7 * 86400,
    min_interval: int = DEFAULT_MIN_INTERVAL,
    self_tests: Sequence[tuple[bool, str]] = (),
    feed_id: str | None = None,
) -> PublishResult:
    """Write a new version of the feed in *out_dir* when *entries* changed; re-sign otherwise."""
    out_dir.mkdir(parents=True, exist_ok=True)
    previous: Manifest | None = None
    previous_rows: list[EntryRow] = []
    manifest_path = out_dir / MANIFEST
    if manifest_path.exists():
        previous = _read_local_manifest(manifest_path.read_bytes(), key.public_key())
        snapshot_path = out_dir / previous.snapshot.name
        data = snapshot_path.read_bytes()
        previous.snapshot.check(data)
        previous_rows = decode_snapshot(data, previous.snapshot.name, previous.snapshot.unpacked)
        if feed_id is not None and feed_id != previous.feed_id:
            raise FeedError(f"{out_dir} holds feed {previous.feed_id}, not {feed_id}")
    current = {e.key: e for e in entries}
    if len(current) != len(entries):
        raise FeedError("the sources list some keys more than once: lint them first")
    if hashed:
        _refuse_plaintext(entries)

    tests = tuple(
        SelfTest(expect, keys=tuple(k for _, k in SelfTest(expect, url=url).lookup_keys())) if hashed
        else SelfTest(expect, url=url)
        for expect, url in self_tests
    )  # fmt: skip
    failures = [
        test.describe()
        for test in tests
        if self_test_matches(test, {k: [current[k]] for _, k in test.lookup_keys() if k in current}, now)
        != test.expect_match
    ]
    if failures:
        raise FeedError("the feed fails its own self-tests: " + "; ".join(failures))

    old_lines = {row[0]: _row_json(row, hashed) for row in previous_rows}
    new_lines = {k: _keep_added(_row_json(e.row(), hashed), old_lines.get(k)) for k, e in current.items()}
    unchanged = (
        previous is not None
        and new_lines == old_lines
        and previous.hashed == hashed
        and previous.self_tests == tests
    )
    if previous is not None and unchanged and previous.snapshot.unpacked is not None:
        # Same version, re-signed with a later expiry: proxies refresh, nothing to download.
        # (A format-1 manifest is republished as a new version: its files lack their unpacked sizes.)
        manifest = Manifest(
            previous.feed_id, previous.version, now, now + expires_in, min_interval, hashed,
            previous.snapshot, previous.entries, previous.diffs, tests,
        )  # fmt: skip
        _write_atomically(manifest_path, sign_manifest(manifest, key))
        return PublishResult(manifest.version, False, manifest.entries, 0, 0, manifest)

    version = previous.version + 1 if previous is not None else 1
    snapshot_data, snapshot_size = _gzip_lines(new_lines[k] for k in sorted(new_lines))
    snapshot = _file_ref(f"snapshot-{version}.jsonl.gz", snapshot_data, snapshot_size)
    _write_atomically(out_dir / snapshot.name, snapshot_data)
    diffs: list[tuple[int, int, FileRef]] = []
    added = removed = 0
    if previous is not None:
        changed = [new_lines[k] for k in sorted(new_lines) if old_lines.get(k) != new_lines[k]]
        gone = [{"op": "del", "k": k.hex()} for k in sorted(old_lines) if k not in new_lines]
        added, removed = len(changed), len(gone)
        diff_data, diff_size = _gzip_lines([*changed, *gone])
        diff = _file_ref(f"diff-{previous.version}-{version}.jsonl.gz", diff_data, diff_size)
        _write_atomically(out_dir / diff.name, diff_data)
        kept = [d for d in previous.diffs if d[2].unpacked is not None]  # format 1's are dropped
        diffs = [(previous.version, version, diff), *kept][:MAX_DIFFS]
    else:
        added = len(new_lines)
    manifest = Manifest(
        feed_id or (previous.feed_id if previous else uuid.uuid4().hex), version, now, now + expires_in,
        min_interval, hashed, snapshot, len(new_lines), tuple(diffs), tests,
    )  # fmt: skip
    _write_atomically(manifest_path, sign_manifest(manifest, key))
    # Keep the previous snapshot for readers that fetched the old manifest a moment ago.
    keep = {MANIFEST, snapshot.name, *(ref.name for _, _, ref in diffs)}
    if previous is not None:
        keep.add(previous.snapshot.name)
    for path in out_dir.iterdir():
        if path.is_file() and path.name not in keep and path.name.endswith(".jsonl.gz"):
            path.unlink()
    return PublishResult(version, True, len(new_lines), added, removed, manifest)
