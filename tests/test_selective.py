"""Decrypt only what must be read: host markers, the host index and the ClientHello decision."""

from __future__ import annotations

import json
import sqlite3
import ssl
import struct
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from mitmproxy import tls
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.tls import parse_client_hello
from mitmproxy.test import tflow

from blocklists import Action, Checker, Entry, Store, key_of
from blocklists.canonical import MAX_HOSTS, host_expressions
from blocklists.checker import _any_named, _parents
from blocklists.entry import host_marker, marker_of
from blocklists.feed import Manifest, decode_snapshot, publish, split_manifest
from blocklists.store import MIGRATIONS, STORE_FILE
from proxy_addon.selective import ENCRYPTED_CLIENT_HELLO
from proxy_addon.settings import bundled_share_sites

from .support.hooks import Proxy, proxy_with

ENTRIES = [
    Entry.listing("mirror.test/", Action.BLOCK),
    Entry.listing("docs.test/leaked/", Action.WARN),  # only a path: the host must still be read
    Entry.listing("10.11.12.13/", Action.BLOCK),
    Entry.listing("[2001:db8::7]/", Action.BLOCK),
    Entry.listing("safe.mirror.test/", Action.ALLOW),
    Entry.listing("xn--bcher-leaks-thb.test/files/", Action.BLOCK),  # bücher-leaks.test
]
HASHED = Entry(key=key_of("hashed.test/files/"), action=Action.BLOCK, marker=host_marker("hashed.test"))


def test_a_marker_names_a_host_and_no_expression() -> None:
    assert marker_of("a.b.test/x/y?z=1") == host_marker("a.b.test") == marker_of("a.b.test/")
    assert len(host_marker("a.b.test")) == 8
    assert host_marker("a.b.test") != key_of("a.b.test/")[:8]  # every expression has a "/"
    assert Entry.listing("a.b.test/x", Action.WARN).marker == host_marker("a.b.test")
    with pytest.raises(ValueError, match="8 bytes"):
        Entry(key=key_of("x.test/"), action=Action.WARN, marker=b"short")


async def _checker(tmp_path: Path, entries: list[Entry]) -> tuple[Store, Checker]:
    store = Store(tmp_path / STORE_FILE)
    await store.open()
    await store.import_entries("corp", entries)
    checker = Checker(store)
    await checker.reload()
    return store, checker


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("mirror.test", True),
        ("MIRROR.TEST.", True),
        ("a.b.mirror.test", True),  # a subdomain: the entry covers it
        ("docs.test", True),  # a path entry: the host is read, the path decided
        ("www.docs.test", True),
        ("hashed.test", True),  # a hashed entry's published marker
        ("10.11.12.13", True),
        ("0x0a0b0c0d", True),  # the same address, spelled otherwise
        ("2001:db8::7", True),
        ("::ffff:10.11.12.13", True),  # IPv4-mapped
        ("clean.test", False),
        ("test", False),  # a parent of a listed host is not itself listed
        ("mirror.test.clean.test", False),
        ("notmirror.test", False),
        ("10.11.12.14", False),
        ("a..b", False),  # read as a.b, as browsers do
        ("not:an:address", True),  # not a host name: doubt is not a pass
        ("XN--BCHER-LEAKS-THB.TEST.", True),  # an IDN host, as an SNI carries it
        ("www.bücher-leaks.test", True),  # and in Unicode, as a CONNECT may
        ("bucher-leaks.test", False),
    ],
)
async def test_reads_host(tmp_path: Path, name: str, read: bool) -> None:
    store, checker = await _checker(tmp_path, [*ENTRIES, HASHED])
    try:
        assert checker.reads_host(name) is read
    finally:
        await store.close()


async def test_every_host_is_read_before_the_index_and_while_an_entry_has_no_known_host(
    tmp_path: Path,
) -> None:
    store, checker = await _checker(tmp_path, ENTRIES)
    try:
        assert Checker(store).reads_host("clean.test")  # not loaded yet
        assert not checker.reads_host("clean.test")
        unknown = Entry(key=key_of("somewhere.test/"), action=Action.BLOCK)  # hashed, no marker
        await store.import_entries("old-hashes", [unknown])
        await checker.reload()
        assert checker.reads_host("clean.test")
        assert checker.hosts is not None
        assert checker.hosts.unmarked == 1
        # An allow entry never needs a connection read: it only ever lets through.
        await store.remove_source("old-hashes")
        await store.import_entries("allow", [Entry(key=key_of("x.test/"), action=Action.ALLOW)])
        await checker.reload()
        assert not checker.reads_host("clean.test")
    finally:
        await store.close()


async def test_a_diff_merges_its_markers(tmp_path: Path) -> None:
    store, checker = await _checker(tmp_path, ENTRIES)
    try:
        added = Entry.listing("later.test/p", Action.WARN)
        await store.import_entries("corp", [added])
        await checker.refresh([added.row()])
        assert checker.reads_host("later.test")
        # A host entry's marker is merged too: a name is screened by its marker alone.
        domain = Entry.listing("newly.test/", Action.BLOCK)
        await store.import_entries("corp", [domain])
        assert not checker.reads_host("newly.test")  # the indexes in force do not know it yet
        await checker.refresh([domain.row()])
        assert checker.reads_host("newly.test")
        assert checker.reads_host("www.newly.test")
        assert not checker.reads_host("oldly.test")
        hashed_without = Entry(key=key_of("elsewhere.test/"), action=Action.WARN)
        await store.import_entries("corp", [hashed_without])
        await checker.refresh([hashed_without.row()])  # no host known: rebuilt, and counted
        assert checker.hosts is not None
        assert checker.hosts.unmarked == 1
    finally:
        await store.close()


async def test_an_older_store_gets_its_markers_from_its_expressions(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE
    db = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:3], 1):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    db.execute("INSERT INTO sources (name, kind, created_at, updated_at) VALUES ('corp', 'local', 1, 1)")
    for expression in ("old.test/a/", "old.test/b", "other.test/"):
        db.execute(
            "INSERT INTO entries (key, source_id, expression, action, added_at) VALUES (?, 1, ?, 'warn', 1)",
            (key_of(expression), expression),
        )
    db.execute(
        "INSERT INTO entries (key, source_id, action, added_at) VALUES (?, 1, 'block', 1)", (b"h" * 32,)
    )
    db.close()
    async with Store(path) as store:
        _, markers = await store.key_prefixes()
        assert markers == b"".join(sorted(host_marker(h)[:4] for h in ("old.test", "other.test")))
        found = await store.lookup([key_of("other.test/")])
        assert found[key_of("other.test/")][0].marker == host_marker("other.test")
        assert await store.unmarked_count() == 1


def test_a_hashed_feed_publishes_markers_not_hosts(tmp_path: Path) -> None:
    listed = [Entry.listing("leak.test/inbox/", Action.BLOCK), Entry.listing("leak.test/hr/", Action.WARN)]
    publish(listed, tmp_path, Ed25519PrivateKey.generate(), now=int(time.time()), hashed=True)
    manifest = Manifest.from_json(json.loads(split_manifest((tmp_path / "manifest.json").read_bytes())[1]))
    raw = (tmp_path / manifest.snapshot.name).read_bytes()
    rows = decode_snapshot(raw, manifest.snapshot.name)
    assert {row[9] for row in rows} == {host_marker("leak.test")}
    assert {row[1] for row in rows} == {None}
    import gzip

    text = gzip.decompress(raw).decode()
    assert "leak.test" not in text
    assert host_marker("leak.test").hex() in text


def test_a_bad_published_marker_is_refused() -> None:
    import gzip

    from blocklists.feed import FeedError

    line = {"k": key_of("x.test/").hex(), "a": "block", "t": 1, "m": "zz"}
    data = gzip.compress((json.dumps(line) + "\n").encode())
    with pytest.raises(FeedError, match="marker"):
        decode_snapshot(data, "snapshot-1.jsonl.gz")


# -- the ClientHello decision --------------------------------------------------------------


def client_hello(sni: str | None, extra_extension: int | None = None) -> tls.ClientHello:
    """A real ClientHello from Python's TLS stack, optionally with one more (empty) extension."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    context = ssl.create_default_context()
    context.check_hostname = sni is not None
    context.verify_mode = ssl.CERT_REQUIRED if sni else ssl.CERT_NONE
    connection = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        connection.do_handshake()
    record = bytearray(outgoing.read())
    if extra_extension is not None:
        record += struct.pack(">HH", extra_extension, 0)
        # Lengths grow by 4: the record's, the handshake message's, the extensions block's.
        struct.pack_into(">H", record, 3, struct.unpack_from(">H", record, 3)[0] + 4)
        length = int.from_bytes(record[6:9], "big") + 4
        record[6:9] = length.to_bytes(3, "big")
        at = 9 + 2 + 32
        at += 1 + record[at]  # session id
        at += 2 + struct.unpack_from(">H", record, at)[0]  # cipher suites
        at += 1 + record[at]  # compression methods
        struct.pack_into(">H", record, at, struct.unpack_from(">H", record, at)[0] + 4)
    hello = parse_client_hello(bytes(record))
    assert hello is not None
    return hello


def decide(proxy: Proxy, connect: str | None, hello: tls.ClientHello) -> bool:
    """Whether the proxy decrypts this connection (False: passed through untouched)."""
    context = Context(tflow.tclient_conn(), proxy.tctx.options)
    context.server.address = (connect, 443) if connect else None
    data = tls.ClientHelloData(context, hello)
    proxy.addon.tls_clienthello(data)
    return not data.ignore_connection


SITES = ["social.example"]


async def test_only_connections_an_entry_could_match_are_decrypted(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, [*ENTRIES, HASHED], linkwarn_share_sites=SITES) as proxy:
        cases = [
            ("clean.test", "clean.test", False),
            ("mirror.test", "mirror.test", True),
            ("clean.test", "mirror.test", True),  # SNI listed
            ("mirror.test", "clean.test", True),  # CONNECT target listed
            ("x.docs.test", "x.docs.test", True),
            ("hashed.test", "hashed.test", True),
            ("10.11.12.13", "clean.test", True),
            ("m.social.example", "m.social.example", True),  # a share site: posts are scanned
            ("linkwarn.internal", "linkwarn.internal", True),  # the own origin
            (None, "clean.test", False),  # transparent mode: the SNI alone
        ]
        for connect, sni, read in cases:
            assert decide(proxy, connect, client_hello(sni)) is read, (connect, sni)
        counts = proxy.runtime.connections
        assert (counts.decrypted, counts.passed) == (8, 2)


async def test_doubt_decrypts(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES, linkwarn_share_sites=SITES) as proxy:
        assert not decide(proxy, "clean.test", client_hello("clean.test"))
        assert decide(proxy, "clean.test", client_hello(None))  # no server name: the host is unknown
        assert decide(proxy, "10.0.0.1", client_hello(None))
        # An Encrypted Client Hello may hide the real name behind an outer one: decrypted, unless
        # the outer name is the CONNECT target (Chromium's GREASE ECH, on every connection).
        assert decide(proxy, "clean.test", client_hello("cdn.clean.test", ENCRYPTED_CLIENT_HELLO))
        assert decide(proxy, None, client_hello("clean.test", ENCRYPTED_CLIENT_HELLO))  # transparent
        assert not decide(proxy, "clean.test", client_hello("clean.test", ENCRYPTED_CLIENT_HELLO))
        assert not decide(proxy, "clean.test", client_hello("clean.test", 0x7A7A))  # a GREASE extension


async def test_full_interception_and_share_everywhere_decrypt_all(tmp_path: Path) -> None:
    async with proxy_with(tmp_path / "a", ENTRIES, linkwarn_intercept="all") as proxy:
        assert decide(proxy, "clean.test", client_hello("clean.test"))
    async with proxy_with(tmp_path / "b", ENTRIES, linkwarn_share_sites=["*"]) as proxy:
        assert decide(proxy, "clean.test", client_hello("clean.test"))


async def test_a_passed_tunnel_is_forgotten_when_its_host_gets_listed(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES, linkwarn_share_sites=SITES) as proxy:
        assert not decide(proxy, "later.test", client_hello("later.test"))
        assert list(proxy.addon.selective.passed.values()) == [("later.test",)]
        later = Entry.listing("later.test/p", Action.WARN)
        assert proxy.runtime.store is not None
        await proxy.runtime.store.import_entries("corp", [later])
        await proxy.runtime._reload([later.row()])
        assert proxy.addon.selective.passed == {}  # closed (by the proxy server, when one runs)
        assert decide(proxy, "later.test", client_hello("later.test"))


def test_the_bundled_share_sites_are_host_names_of_places_people_post() -> None:
    sites = bundled_share_sites()
    assert {"x.com", "mail.google.com", "pastebin.com", "discord.com"} <= set(sites)
    assert len(sites) == len(set(sites))


async def test_share_sites_default_to_the_bundled_list_and_can_be_replaced(tmp_path: Path) -> None:
    async with proxy_with(tmp_path / "a", ENTRIES) as proxy:
        settings = proxy.runtime.settings
        assert settings is not None
        assert settings.scans_posts_to("x.com")
        assert settings.scans_posts_to("mobile.x.com")
        assert not settings.scans_posts_to("com")
        assert not settings.scans_posts_to("social.example")
        assert not settings.scans_posts_to("notx.com")
    async with proxy_with(tmp_path / "b", ENTRIES, linkwarn_share_sites=["social.example"]) as proxy:
        settings = proxy.runtime.settings
        assert settings is not None
        assert settings.scans_posts_to("m.social.example")
        assert not settings.scans_posts_to("x.com")


def test_a_bad_share_site_or_intercept_value_is_named(tmp_path: Path) -> None:
    from mitmproxy import exceptions
    from mitmproxy.test import taddons

    from proxy_addon.interceptor import Linkwarn

    addon = Linkwarn()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="linkwarn_share_sites: 'not a host'"):
            tctx.configure(addon, linkwarn_data_dir=str(tmp_path), linkwarn_share_sites=["not a host"])
        with pytest.raises(exceptions.OptionsError, match="linkwarn_intercept"):
            tctx.configure(addon, linkwarn_data_dir=str(tmp_path), linkwarn_intercept="some")


async def test_the_ca_page_says_what_is_decrypted(tmp_path: Path) -> None:
    async with proxy_with(tmp_path, ENTRIES) as proxy:
        flow = await proxy.request("http://linkwarn.internal/")
        assert flow.response is not None
        text = flow.response.get_text() or ""
        assert "decrypts only connections to the sites your organisation lists" in text
        assert "a listed site shows a certificate error" in text


@given(
    labels=st.lists(
        st.sampled_from(["a", "b", "co", "uk", "github", "io", "example", "test", "com", "s3"]),
        min_size=1,
        max_size=8,
    ),
)
def test_a_host_and_its_parents_hold_every_host_a_url_is_looked_up_under(labels: list[str]) -> None:
    host = ".".join(labels)
    asked: list[str] = []

    def holds(name: str) -> bool:
        asked.append(name)
        return False

    if host.count(".") <= MAX_HOSTS:  # deeper hosts are looked up under host_expressions itself
        assert not _any_named(holds, _parents(host), None)
        assert set(host_expressions(host)) <= {host, *asked}
