"""The shared feed: a directory of static files that IT signs and every proxy checks.

    manifest.json            {"signed": {...}, "signatures": [{"key": ..., "sig": ...}]}
    snapshot-<v>.jsonl.gz    every entry of version v, one JSON object a line
    diff-<a>-<b>.jsonl.gz    what changed from version a to b

An entry line: ``k`` key (hex), ``a`` action, ``t`` added, and when set ``e``
expression (not in a hashed feed), ``r`` reason, ``c`` category, ``i``
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .canonical import canonicalize_traced, expressions, expressions_of
from .entry import Action, Entry, EntryRow, key_of
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
    "verify_manifest",
]

FORMAT = 1
MANIFEST = "manifest.json"
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
    def from_json(cls, data: Any) -> Manifest:
        try:
            if data["format"] != FORMAT:
                raise FeedError(
                    f"feed format {data['format']!r} is not supported (this linkwarn reads {FORMAT})"
                )
            tests = []
            for test in data["self_tests"]:
                expect = {"match": True, "no-match": False}[test["expect"]]
                if "url" in test:
                    tests.append(SelfTest(expect, url=str(test["url"])))
                else:
                    tests.append(SelfTest(expect, keys=tuple(bytes.fromhex(k) for k in test["keys"])))
            return cls(
                feed_id=str(data["feed_id"]),
                version=_int(data["version"]),
                generated_at=_int(data["generated_at"]),
                expires_at=_int(data["expires_at"]),
                min_interval=_int(data["min_interval"]),
                hashed=bool(data["hashed"]),
                snapshot=_ref(data["snapshot"]),
                entries=_int(data["entries"]),
                diffs=tuple((_int(d["from"]), _int(d["to"]), _ref(d)) for d in data["diffs"]),
                self_tests=tuple(tests),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FeedError(f"malformed manifest: {type(exc).__name__} {exc}") from None

    def chain(self, have: int) -> list[FileRef] | None:
        """The diffs that lead from version *have* to this one, or None when the chain is broken."""
        steps = {a: (b, ref) for a, b, ref in self.diffs}
        chain = []
        at = have
        while at != self.version:
            if at not in steps:
                return None
            at, ref = steps[at]
            chain.append(ref)
        return chain


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _ref(data: Any) -> FileRef:
    name = str(data["name"])
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"file name {name!r} is not a plain name in the feed directory")
    return FileRef(name, str(data["sha256"]), _int(data["size"]))


def _ref_json(ref: FileRef) -> dict[str, Any]:
    return {"name": ref.name, "sha256": ref.sha256, "size": ref.size}


def _canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign_manifest(manifest: Manifest, key: Ed25519PrivateKey) -> bytes:
    signed = manifest.to_json()
    signature = key.sign(_canonical_json(signed))
    document = {
        "signed": signed,
        "signatures": [{"key": key_id(key.public_key()), "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"


def verify_manifest(data: bytes, keys: Sequence[Ed25519PublicKey]) -> Manifest:
    """The manifest, if a pinned key signed it. Raises FeedError naming what is wrong."""
    try:
        document = json.loads(data)
        signed = document["signed"]
        signatures = document["signatures"]
    except (ValueError, KeyError, TypeError):
        raise FeedError("malformed manifest: not a signed linkwarn manifest") from None
    payload = _canonical_json(signed)
    for key in keys:
        for signature in signatures if isinstance(signatures, list) else ():
            try:
                key.verify(base64.b64decode(signature["sig"], validate=True), payload)
            except (InvalidSignature, binascii.Error, KeyError, TypeError, ValueError):
                continue
            return Manifest.from_json(signed)
    raise FeedError("bad signature: the manifest is not signed by a pinned key")


# -- entry files --------------------------------------------------------------


_ACTIONS = frozenset(str(action) for action in Action)


def _row_json(row: EntryRow, hashed: bool) -> dict[str, Any]:
    key, expression, action, reason, category, incident, added_at, expires_at, require_reason = row
    out: dict[str, Any] = {"k": key.hex(), "a": action, "t": added_at}
    if expression is not None and not hashed:
        out["e"] = expression
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
    if expression is not None and type(expression) is not str:
        raise ValueError(f"bad expression in entry {item['k']!r}")
    return (key, expression, action, reason, category, incident, added_at, expires_at, require_reason)


_PIECE = 1 << 15  # compressed bytes per step: about 100 KB of lines to parse at a time


Data = bytes | Iterable[bytes]  # a file whole, or in the chunks it arrives in


def _text_pieces(data: Data, name: str) -> Iterator[bytes]:
    """The decompressed text of a gzip'd file, in pieces that end at a line end.

    Incremental on purpose: this runs off the event loop, and gzip.decompress
    ends with one join of the whole output, a memcpy of some 130 MB for a
    million entries that holds the GIL, and so stalls the proxy, for 50-80 ms.
    """
    decompressor = zlib.decompressobj(wbits=31)  # gzip header and trailer, checked
    pending = b""
    try:
        for chunk in [data] if isinstance(data, bytes) else data:
            view = memoryview(chunk)
            for start in range(0, len(chunk), _PIECE):
                pending += decompressor.decompress(view[start : start + _PIECE])
                cut = pending.rfind(b"\n")
                if cut >= 0:
                    yield pending[: cut + 1]
                    pending = pending[cut + 1 :]
        pending += decompressor.flush()
    except zlib.error as exc:
        raise FeedError(f"{name}: not a gzip file ({exc})") from None
    if not decompressor.eof:
        raise FeedError(f"{name}: the gzip data ends early (truncated)")
    if pending.strip():
        yield pending


def _item_chunks(data: Data, name: str) -> Iterator[list[dict[str, Any]]]:
    """The JSON lines of a gzip'd entry file, about 100 KB of them at a time.

    Chunked on purpose too: one json.loads over a million lines would hold the
    GIL for most of a second.
    """
    line = 1
    for piece in _text_pieces(data, name):
        chunk = piece.strip()
        if chunk:
            try:
                yield json.loads(b"[" + chunk.replace(b"\n", b",") + b"]")
            except ValueError:
                for number, text in enumerate(chunk.split(b"\n"), line):
                    try:
                        json.loads(text)
                    except ValueError:
                        raise FeedError(f"{name}:{number}: not a JSON line") from None
                raise FeedError(f"{name}: not JSON lines") from None
        line += piece.count(b"\n")


def _items(data: Data, name: str) -> list[dict[str, Any]]:
    return [item for chunk in _item_chunks(data, name) for item in chunk]


def iter_snapshot(data: Data, name: str) -> Iterator[EntryRow]:
    """A snapshot's rows, streamed in key order (a snapshot out of order is malformed).

    Streaming lets a consumer in another thread parse, insert and free a chunk at
    a time: no list of a million rows is built, or freed, on the event loop.
    """
    previous = b""
    try:
        for chunk in _item_chunks(data, name):
            for item in chunk:
                row = _row(item)
                if row[0] <= previous:
                    raise FeedError(f"{name}: entries out of key order at {row[0].hex()}")
                previous = row[0]
                yield row
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FeedError(f"{name}: malformed entry ({exc})") from None


def decode_snapshot(data: bytes, name: str) -> list[EntryRow]:
    """The entries of a snapshot file, as rows. Raises FeedError naming the file."""
    return list(iter_snapshot(data, name))


def decode_diff(data: Data, name: str) -> tuple[list[EntryRow], list[bytes]]:
    """A diff file: the rows to add or replace, and the keys to remove."""
    upserts: list[EntryRow] = []
    removals: list[bytes] = []
    try:
        for item in _items(data, name):
            if item.get("op") == "del":
                removals.append(bytes.fromhex(item["k"]))
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


def _gzip_lines(items: Iterable[dict[str, Any]]) -> bytes:
    text = "".join(json.dumps(item, sort_keys=True, separators=(",", ":")) + "\n" for item in items)
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


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
        previous = verify_manifest(manifest_path.read_bytes(), [key.public_key()])
        snapshot_path = out_dir / previous.snapshot.name
        data = snapshot_path.read_bytes()
        previous.snapshot.check(data)
        previous_rows = decode_snapshot(data, previous.snapshot.name)
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
    if previous is not None and unchanged:
        # Same version, re-signed with a later expiry: proxies refresh, nothing to download.
        manifest = Manifest(
            previous.feed_id, previous.version, now, now + expires_in, min_interval, hashed,
            previous.snapshot, previous.entries, previous.diffs, tests,
        )  # fmt: skip
        _write_atomically(manifest_path, sign_manifest(manifest, key))
        return PublishResult(manifest.version, False, manifest.entries, 0, 0, manifest)

    version = previous.version + 1 if previous is not None else 1
    snapshot_data = _gzip_lines(new_lines[k] for k in sorted(new_lines))
    snapshot = FileRef(
        f"snapshot-{version}.jsonl.gz", hashlib.sha256(snapshot_data).hexdigest(), len(snapshot_data)
    )
    _write_atomically(out_dir / snapshot.name, snapshot_data)
    diffs: list[tuple[int, int, FileRef]] = []
    added = removed = 0
    if previous is not None:
        changed = [new_lines[k] for k in sorted(new_lines) if old_lines.get(k) != new_lines[k]]
        gone = [{"op": "del", "k": k.hex()} for k in sorted(old_lines) if k not in new_lines]
        added, removed = len(changed), len(gone)
        diff_data = _gzip_lines([*changed, *gone])
        diff = FileRef(
            f"diff-{previous.version}-{version}.jsonl.gz",
            hashlib.sha256(diff_data).hexdigest(),
            len(diff_data),
        )
        _write_atomically(out_dir / diff.name, diff_data)
        diffs = [(previous.version, version, diff), *previous.diffs][:MAX_DIFFS]
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
