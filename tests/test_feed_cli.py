"""``linkwarn feed keygen|publish|serve``, ``sync --once`` and ``status`` as IT and a proxy use them."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .support.servers import ROOT, free_port
from .test_cli import Run


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path / "data")


def linkwarn(*argv: str) -> tuple[int, str, str]:
    import io

    from proxy_addon.cli import main

    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out, err), out.getvalue(), err.getvalue()


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    code, out, _ = linkwarn("feed", "keygen", "--out", str(tmp_path / "keys"))
    assert code == 0, out
    return tmp_path / "keys"


@pytest.fixture
def served(tmp_path: Path, keys: Path) -> Iterator[str]:
    source = tmp_path / "mirrors.txt"
    source.write_text("||leak.example^\n||mirror.test^\n")
    feed = tmp_path / "feed"
    assert (
        linkwarn("feed", "publish", str(source), "--key", str(keys / "feed.key"), "--out", str(feed))[0] == 0
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "proxy_addon.cli", "feed", "serve", str(feed), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert "serving" in process.stdout.readline()
    yield f"http://127.0.0.1:{port}/"
    process.terminate()
    process.wait(10)


def test_keygen_writes_a_private_key_only_its_owner_reads(keys: Path) -> None:
    assert stat.S_IMODE((keys / "feed.key").stat().st_mode) == 0o600
    assert (keys / "feed.pub").read_text().startswith("ed25519:")
    code, out, _ = linkwarn("feed", "keygen", "--out", str(keys))
    assert code == 2  # never overwrites a key pair
    private = (keys / "feed.key").read_text()
    assert "PRIVATE KEY" in private
    assert private.splitlines()[1] not in out


def test_publish_lints_then_writes_versions(tmp_path: Path, keys: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("||co.uk^\n||leak.example^\n")
    other = tmp_path / "other.txt"
    other.write_text("@@||leak.example^\n")
    feed = tmp_path / "feed"
    code, _, err = linkwarn(
        "feed", "publish", str(bad), str(other), "--key", str(keys / "feed.key"), "--out", str(feed)
    )
    assert code == 2
    assert "co.uk is a public suffix" in err
    assert "conflict: leak.example/ is also listed in bad.txt" in err
    assert "nothing published" in err
    assert not feed.exists()
    args = ["--key", str(keys / "feed.key"), "--out", str(feed), "--force"]
    code, out, _ = linkwarn("feed", "publish", str(bad), str(other), *args)
    assert code == 0
    assert "version 1, 2 entries" in out
    code, out, _ = linkwarn("feed", "publish", str(bad), str(other), *args)
    assert "unchanged, version 1 re-signed" in out


def test_publish_errors_name_the_problem(tmp_path: Path, keys: Path) -> None:
    source = tmp_path / "s.txt"
    source.write_text("leak.example\n")
    tests = tmp_path / "tests.txt"
    tests.write_text("match https://leak.example/\nmaybe https://x.example/\n")

    def publish(key: str, *extra: str) -> tuple[int, str, str]:
        return linkwarn(
            "feed", "publish", str(source), "--key", str(keys / key), "--out", str(tmp_path / "feed"), *extra
        )

    code, _, err = publish("feed.pub")
    assert (code, "feed.pub is not a PEM private key" in err) == (2, True)
    code, _, err = publish("feed.key", "--self-test", str(tests))
    assert code == 2
    assert "tests.txt:2: expected 'match URL' or 'no-match URL'" in err
    tests.write_text("no-match https://www.leak.example/x\n")
    code, _, err = publish("feed.key", "--self-test", str(tests))
    assert code == 2
    assert "fails its own self-tests: https://www.leak.example/x should not match" in err


def test_serve_answers_with_etags_and_nothing_outside_the_feed(served: str) -> None:
    with httpx.Client() as client:
        first = client.get(served + "manifest.json")
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert client.get(served + "manifest.json", headers={"if-none-match": etag}).status_code == 304
        assert client.get(served + "snapshot-1.jsonl.gz").status_code == 200
        assert client.get(served).status_code == 404  # no listing
        assert client.get(served + "../../etc/passwd").status_code == 404


def test_sync_once_then_status(run: Run, served: str, keys: Path, tmp_path: Path) -> None:
    code, out, _ = run("sync", "--once", "--feed", served, "--feed-key", str(keys / "feed.pub"))
    assert code == 0
    assert f"{served}: snapshot, version 1, 2 entries" in out
    code, out, _ = run("check", "https://www.mirror.test/")
    assert code == 1
    code, out, _ = run("status", "--json")
    report = json.loads(out)
    (feed,) = report["feeds"]
    assert (feed["url"], feed["version"], feed["entries"], feed["stale"], feed["last_error"]) == (
        served, 1, 2, False, None,
    )  # fmt: skip
    assert report["index_entries"] == 2
    assert report["proxy"] is None
    code, out, _ = run("status")
    assert "version 1, 2 entries, fresh" in out
    assert "proxy not running" in out


def test_sync_with_the_wrong_key_fails_and_status_says_why(run: Run, served: str, tmp_path: Path) -> None:
    linkwarn("feed", "keygen", "--out", str(tmp_path / "other"))
    code, _, err = run("sync", "--once", "--feed", served, "--feed-key", str(tmp_path / "other" / "feed.pub"))
    assert code == 1
    assert "FAILED, kept version None: bad signature" in err
    _, out, _ = run("status")
    assert "last error: bad signature: the manifest is not signed by a pinned key" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--feed", "http://127.0.0.1:9/"], "the following arguments are required: --feed-key"),
        (["--feed", "ftp://x.test/", "--feed-key", "ed25519:AAAA"], "must start with http"),
        (["--feed", "http://a.test/", "--feed-key", "ed25519:AAAA"], "is not a valid Ed25519 public key"),
        (
            [
                "--feed",
                "http://a.test/",
                "--feed",
                "http://b.test/",
                "--feed-key",
                "k1",
                "--feed-key",
                "k2",
                "--feed-key",
                "k3",
            ],
            "2 --feed but 3 --feed-key",
        ),
    ],
)
def test_sync_arguments_are_checked(
    run: Run, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run("sync", "--once", *argv)
    assert code == 2
    assert message in err + capsys.readouterr().err


def test_status_shows_a_running_proxy(tmp_path: Path) -> None:
    from .support.servers import RunningProxy

    proxy = RunningProxy.start(tmp_path / "data", 9, 9)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / "data" / "run.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        code, out, _ = linkwarn("status", "--data-dir", str(tmp_path / "data"))
        assert code == 0
        assert f"listening on 127.0.0.1:{proxy.port}" in out
    finally:
        proxy.stop()
    assert not (tmp_path / "data" / "run.json").exists()


def test_publish_carries_require_reason_and_refuses_a_source_read_in_the_wrong_format(
    tmp_path: Path, keys: Path
) -> None:
    from blocklists.feed import MANIFEST, Manifest, decode_snapshot, split_manifest

    source = tmp_path / "it.csv"
    source.write_text(
        "url,action,require_reason\nhttps://strict.test/,warn,yes\nhttps://plain.test/,warn,no\n"
    )
    feed = tmp_path / "feed"
    args = ("--key", str(keys / "feed.key"), "--out", str(feed))
    assert linkwarn("feed", "publish", str(source), *args)[0] == 0
    manifest = Manifest.from_json(json.loads(split_manifest((feed / MANIFEST).read_bytes())[1]))
    rows = decode_snapshot((feed / manifest.snapshot.name).read_bytes(), manifest.snapshot.name)
    assert sorted((row[1], row[8]) for row in rows) == [("plain.test/", False), ("strict.test/", True)]
    page = tmp_path / "list.txt"
    page.write_text("<html>\n<body>\nNot Found\n</body>\n</html>\n")
    code, _, err = linkwarn("feed", "publish", str(page), *args)
    assert code == 2
    assert "list.txt: 5 of 5 lines rejected, read as a domains list" in err
