"""Selective decryption: HTTPS through ``linkwarn run`` (1M entries) against bare mitmdump, in one run.

    uv run python bench/bench_selective.py                      # 1M entries, 20 s per round, 2 rounds
    uv run python bench/bench_selective.py --entries 100000 --seconds 10

Each request is a new HTTPS connection, as a browser opens one per host: CONNECT, a
TLS handshake with SNI, one GET, close. The mix is 95 % requests to unlisted hosts
(``h<n>.bench.test``, passed through by linkwarn as untouched tunnels) and 5 % to
listed ones (``m<n>.leak.test``, which linkwarn decrypts and answers with its warning
redirect). Bare mitmdump decrypts every connection and forwards it. The upstream is a
small asyncio TLS server in a process of its own; both proxies send every connection
to it through the same routing script. Printed per proxy and round: requests/s,
latency p50 and p99, the proxy's CPU per request; then the ratios to bare mitmdump
(targets: throughput >= 3x, p99 no worse), and the CPU per unlisted HTTPS request
from a run of unlisted hosts only. The load generator shares the machine: its own
CPU is printed too, since on two cores it, not linkwarn, can be what caps the
wall-clock throughput (the proxy's CPU per request then says what it could carry).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import multiprocessing
import os
import random
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from blocklists import Action, Entry, Store  # noqa: E402
from tests.support.servers import ROUTE_SCRIPT, free_port  # noqa: E402
from tests.support.synthetic import synthetic_entries  # noqa: E402

CLOCK = os.sysconf("SC_CLK_TCK")
BODY = b"<!doctype html><title>ok</title><p>an ordinary page</p>"


# -- the upstream: TLS, keep-alive, one small page ---------------------------------------------


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench upstream")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("*.bench.test"), x509.DNSName("*.leak.test")]), False
        )
        .sign(key, hashes.SHA256())
    )
    pem, private = directory / "upstream.pem", directory / "upstream.key"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pem, private


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: %d\r\n\r\n" % len(BODY)
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(head + BODY)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ssl.SSLError):
        pass
    finally:
        writer.close()


def _upstream(port: int, pem: str, key: str) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem, key)

    async def main() -> None:
        server = await asyncio.start_server(_serve_one, "127.0.0.1", port, ssl=context, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- the load -----------------------------------------------------------------------------------


@dataclass
class Round:
    requests: int = 0
    errors: int = 0
    listed: int = 0
    latencies: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    client_cpu: float = 0.0  # seconds of the load generator's own CPU
    upstream_cpu: float = 0.0  # and of the upstream's

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def _one(port: int, host: str, context: ssl.SSLContext) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        reply = await reader.readuntil(b"\r\n\r\n")
        if not reply.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(reply[:40].decode("latin-1"))
        await writer.start_tls(context, server_hostname=host)
        writer.write(
            f"GET / HTTP/1.1\r\nHost: {host}\r\nAccept: text/html\r\nSec-Fetch-Dest: document\r\n"
            "Sec-Fetch-Mode: navigate\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        return int(head.split(b" ")[1])
    finally:
        writer.close()


async def load(port: int, seconds: float, concurrency: int, listed_share: float) -> Round:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the client's cost is the same through either proxy
    result = Round()
    deadline = time.monotonic() + seconds
    rng = random.Random(7)

    async def worker() -> None:
        while time.monotonic() < deadline:
            listed = rng.random() < listed_share
            host = f"m{rng.randrange(1000)}.leak.test" if listed else f"h{rng.randrange(100_000)}.bench.test"
            started = time.perf_counter()
            try:
                status = await asyncio.wait_for(_one(port, host, context), 30)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ssl.SSLError, ValueError) as exc:
                result.errors += 1
                if len(result.problems) < 5:
                    result.problems.append(f"{host}: {exc!r}")
                continue
            result.latencies.append((time.perf_counter() - started) * 1000)
            result.requests += 1
            result.listed += listed and status == 303

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


# -- the proxies ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK


async def _wait_listening(port: int, ready: Path | None = None) -> None:
    for _ in range(600):
        if ready is None or await asyncio.to_thread(ready.exists):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            except OSError:
                pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


async def start_proxy(kind: str, work: Path, upstream_port: int) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    env = {
        **os.environ,
        "LINKWARN_TEST_HTTP_PORT": str(upstream_port),
        "LINKWARN_TEST_HTTPS_PORT": str(upstream_port),
    }
    if kind == "mitmdump":
        command = [
            str(Path(sys.executable).parent / "mitmdump"), "-q", "--listen-host", "127.0.0.1",
            "--listen-port", str(port), "-s", str(ROUTE_SCRIPT), "--set", "connection_strategy=lazy",
            "--set", "ssl_insecure=true", "--set", f"confdir={work / 'bare-conf'}",
        ]  # fmt: skip
        ready = None
    else:
        command = [
            sys.executable, "-m", "proxy_addon.cli", "run", "--data-dir", str(work / "data"),
            "--listen-port", str(port), "--api-port", "0", "--no-sample", "--script", str(ROUTE_SCRIPT),
            "--set", "ssl_insecure=true",
        ]  # fmt: skip
        ready = work / "data" / "run.json"
        ready.unlink(missing_ok=True)
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await _wait_listening(port, ready)
    if kind == "linkwarn":
        await asyncio.sleep(8)  # the index of a million entries is built in the background
    return process, port


async def measure(
    kind: str, work: Path, upstream: tuple[int, int], args: argparse.Namespace, share: float
) -> tuple[Round, float]:
    upstream_port, upstream_pid = upstream
    process, port = await start_proxy(kind, work, upstream_port)
    try:
        await load(port, 2, args.concurrency, share)  # warm-up: certificates forged, caches filled
        before, client_before = cpu_seconds(process.pid), time.process_time()
        upstream_before = cpu_seconds(upstream_pid)
        result = await load(port, args.seconds, args.concurrency, share)
        cpu = cpu_seconds(process.pid) - before
        result.client_cpu = time.process_time() - client_before
        result.upstream_cpu = cpu_seconds(upstream_pid) - upstream_before
    finally:
        process.terminate()
        await process.wait()
    return result, cpu


def show(kind: str, result: Round, cpu: float, seconds: float) -> None:
    per = cpu / max(result.requests, 1) * 1000
    print(
        f"  {kind:<9} {result.requests / seconds:7.0f} req/s  p50 {result.percentile(0.5):6.1f} ms  "
        f"p99 {result.percentile(0.99):6.1f} ms  proxy CPU {per:5.2f} ms/request  errors {result.errors}"
        + (f"  listed warned {result.listed}" if kind == "linkwarn" else "")
    )
    print(
        f"            cores busy: proxy {cpu / seconds:4.2f}, load generator "
        f"{result.client_cpu / seconds:4.2f}, upstream {result.upstream_cpu / seconds:4.2f}"
    )
    for problem in result.problems[:3]:
        print(f"            e.g. {problem}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=96)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pem, key = _certificate(work)
        upstream_port = free_port()
        child = multiprocessing.get_context("spawn").Process(
            target=_upstream, args=(upstream_port, str(pem), str(key)), daemon=True
        )
        child.start()
        await _wait_listening(upstream_port)
        started = time.perf_counter()
        async with Store.in_dir(work / "data") as store:
            listed = [Entry.listing("leak.test/", Action.WARN, reason="bench")]
            await store.import_entries("bench", [*listed, *synthetic_entries(args.entries - 1)])
        print(
            f"store: {args.entries} entries in {time.perf_counter() - started:.0f} s; {args.concurrency} "
            f"clients, {args.seconds:.0f} s a round, a new connection per request"
        )
        totals: dict[str, list[tuple[Round, float]]] = {"linkwarn": [], "mitmdump": []}
        for number in range(args.rounds):
            print(f"round {number + 1}: 95 % unlisted hosts, 5 % listed")
            for kind in ("mitmdump", "linkwarn") if number % 2 == 0 else ("linkwarn", "mitmdump"):
                result, cpu = await measure(kind, work, (upstream_port, child.pid or 0), args, 0.05)
                totals[kind].append((result, cpu))
                show(kind, result, cpu, args.seconds)
        print("unlisted hosts only:")
        unlisted = {}
        for kind in ("mitmdump", "linkwarn"):
            result, cpu = await measure(kind, work, (upstream_port, child.pid or 0), args, 0.0)
            unlisted[kind] = cpu / max(result.requests, 1) * 1000
            show(kind, result, cpu, args.seconds)
        ours = [r.requests for r, _ in totals["linkwarn"]]
        theirs = [r.requests for r, _ in totals["mitmdump"]]
        p99_ours = sum(r.percentile(0.99) for r, _ in totals["linkwarn"]) / args.rounds
        p99_theirs = sum(r.percentile(0.99) for r, _ in totals["mitmdump"]) / args.rounds
        per_request = {
            kind: sum(cpu for _, cpu in runs) / sum(r.requests for r, _ in runs)
            for kind, runs in totals.items()
        }
        ours_ms, theirs_ms = per_request["linkwarn"] * 1000, per_request["mitmdump"] * 1000
        print(
            f"proxy CPU per request on the mix: linkwarn {ours_ms:.2f} ms, bare mitmdump {theirs_ms:.2f} ms: "
            f"{theirs_ms / ours_ms:.1f}x the requests per core"
        )
        print(
            f"linkwarn / bare mitmdump: throughput {sum(ours) / sum(theirs):.2f}x (target >= 3x), "
            f"p99 {p99_ours / p99_theirs:.2f}x (target <= 1x); proxy CPU per unlisted HTTPS request: "
            f"linkwarn {unlisted['linkwarn']:.2f} ms, bare mitmdump {unlisted['mitmdump']:.2f} ms "
            f"({unlisted['mitmdump'] / max(unlisted['linkwarn'], 1e-9):.1f}x less)"
        )
        child.terminate()


if __name__ == "__main__":
    asyncio.run(main())
