"""How linkwarn's canonical host agrees with the WHATWG URL standard's, on the web-platform-tests cases.

Reads ../shared/peer-vectors/ (other projects' data, never copied into the
repository): the host subset of wpt's urltestdata.json and toascii.json. For
each input the browser parses, linkwarn's canonical host must be the one the
browser would ask for (IPv4 in every spelling, IDN by UTS #46, IPv6). Inputs
the browser refuses are counted apart: a URL no browser requests cannot be
missed, so linkwarn deciding them anyway is harmless; the table says how many
it still gives a host.

    uv run python bench/bench_whatwg.py
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blocklists import InvalidURL, canonicalize_traced  # noqa: E402

VECTORS = ROOT.parent / "shared" / "peer-vectors"


def our_host(url: str) -> str | None:
    try:
        return canonicalize_traced(url).host
    except InvalidURL:
        return None


def main() -> int:
    if not VECTORS.exists():
        print(f"no peer vectors at {VECTORS}")
        return 1
    cases = json.loads((VECTORS / "wpt-urltestdata-host-subset.json").read_text("utf-8"))["cases"]
    agree, total, refused_by_browser, decided_anyway = Counter(), Counter(), 0, 0
    disagreements = []
    for case in cases:
        if case.get("failure"):
            refused_by_browser += 1
            decided_anyway += our_host(case["input"]) is not None
            continue
        kind = case.get("class", "other")
        total[kind] += 1
        expected = case["hostname"].lower()
        got = our_host(case["input"])
        if got == expected:
            agree[kind] += 1
        else:
            disagreements.append((kind, case["input"], expected, got))
    print("urltestdata host cases the browser parses:")
    print("| class | cases | same host |")
    print("| --- | --- | --- |")
    for kind in sorted(total):
        print(f"| {kind} | {total[kind]} | {agree[kind]} |")
    print(f"| all | {sum(total.values())} | {sum(agree.values())} |")
    print(f"\nrefused by the browser: {refused_by_browser}; linkwarn still reads a host in {decided_anyway}")

    raw = json.loads((VECTORS / "wpt-toascii.json").read_text("utf-8"))
    toascii = [c for c in raw if isinstance(c, dict)]
    same = parsed = 0
    for case in toascii:
        if case.get("output") is None:
            continue
        parsed += 1
        got = our_host(f"http://{case['input']}/")
        if got == case["output"]:
            same += 1
        else:
            disagreements.append(("toascii", case["input"], case["output"], got))
    print(f"\ntoascii.json names the browser accepts: {parsed}, same host: {same}")
    if disagreements:
        print("\ndisagreements (class, input, WHATWG host, linkwarn host):")
        for kind, given, expected, got in disagreements:
            print(f"  {kind:8} {given!r:60.60} {expected!r:30.30} {got!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
