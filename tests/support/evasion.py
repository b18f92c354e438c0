"""The evasion corpus: spellings and channels of listed URLs, and near misses that must pass.

``python -m tests.support.evasion > tests/vectors/evasion.json`` writes the data
file the Python tests and the extension's JavaScript tests read;
tests/test_evasion.py checks that the committed file is what this makes.
Each case is a URL, what it must get (``expect``: the winning action, or null
for a near miss) and a category for the README's table. A case with ``pad``
(``[text, times]``) stands for its URL followed by *text* repeated *times*
times: the URLs longer than canonicalization takes, kept short in the file.
"""

from __future__ import annotations

import json
import sys
from typing import Any

ENTRIES = [
    ("mirror.test/", "block"),
    ("leak.test/", "warn"),
    ("press.leak.test/", "allow"),
    ("files.test/dump/", "block"),
    ("paste.test/raw/salaries", "warn"),
    ("paste.test/view?id=7", "block"),
    ("10.11.12.13/", "block"),
    ("[2001:db8::7]/", "block"),
    ("xn--bcher-leaks-thb.test/", "block"),  # bücher-leaks.test
    ("xn----dqo34k.test/", "warn"),  # ☃-⌘.test
]

Case = dict[str, Any]


PATHS = ("/", "/film.mkv", "/a/b/c.html?d=e")


def _case(url: str, expect: str | None, category: str, pad: tuple[str, int] | None = None) -> Case:
    case: Case = {"url": url, "expect": expect, "category": category}
    if pad is not None:
        case["pad"] = list(pad)
    return case


def full_url(case: Case) -> str:
    """The case's URL, with its padding."""
    pad = case.get("pad")
    return str(case["url"]) + (str(pad[0]) * int(pad[1]) if pad else "")


def _host_spellings() -> list[Case]:
    cases = []
    hosts = [
        "MIRROR.TEST",
        "Mirror.Test",
        "mirror.test.",
        "mirror.test..",
        ".mirror.test",
        "mirror..test",
        "%6Dirror.test",
        "%6d%69%72%72%6f%72.test",
        "%256Dirror.test",
        "mirror%2Etest",
        "MiRrOr.tEsT.",
        "www.mirror.test",
        "a.b.c.d.e.f.mirror.test",
        "WWW.MIRROR.TEST.",
        "cdn-1.mirror.test",
    ]
    for host in hosts:
        for scheme in ("http", "https"):
            for path in PATHS:
                cases.append(_case(f"{scheme}://{host}{path}", "block", "host spelling"))
    for extra in (":80", ":8080", ":443", ":65535", ":", ":0080"):
        for scheme in ("http", "https"):
            for path in PATHS:
                cases.append(_case(f"{scheme}://mirror.test{extra}{path}", "block", "ports"))
    for userinfo in ("user@", "user:pass@", "a@b@", "clean.test@", "%40@", ":@"):
        for scheme in ("http", "https"):
            for path in ("/", "/film"):
                cases.append(_case(f"{scheme}://{userinfo}mirror.test{path}", "block", "user info"))
    return cases


def _parser_spellings() -> list[Case]:
    """What browsers accept in the address bar or a link: the URL parser's leniency."""
    cases = []
    for url in (
        "mirror.test",
        "mirror.test/film",
        "//mirror.test/film",
        "http:mirror.test/film",
        "http:/mirror.test/",
        "http:\\\\mirror.test\\film",
        "https:\\\\mirror.test/film",
        "http:///mirror.test/",
        " http://mirror.test/ ",
        "\thttp://mirror.test/",
        "http://mirr\tor.test/",
        "http://mirror\n.test/",
        "http://mirror.test\r/",
        "HTTP://MIRROR.TEST/",
        "hTtPs://mirror.test/",
        "http://mirror.test#frag",
        "http://mirror.test?q",
        "http://mirror.test/#/../../clean",
        "\x01\x1bhttp://mirror.test/\x1f ",
    ):
        cases.append(_case(url, "block", "parser leniency"))
    return cases


def _path_spellings() -> list[Case]:
    cases = []
    for path in (
        "/dump/",
        "/dump/salaries.xlsx",
        "/DUMP/".lower(),
        "/./dump/x",
        "/x/../dump/y",
        "/dump/./y",
        "//dump/y",
        "/dump//y",
        "/%64ump/y",
        "/%2564ump/y",
        "/dump%2Fy",
        "/dump%2fsub/y",
        "/x/%2e%2e/dump/y",
        "/x/%2E%2E/dump/",
        "/.%2e/dump/y",
        "/dump/y?download=1",
        "/dump/y#top",
        "/dump/%00",
        "/dump/a%20b",
        "/a/b/c/../../../dump/y",
        "\\dump\\y",
        "/dump\\y",
    ):
        for scheme in ("http", "https"):
            cases.append(_case(f"{scheme}://files.test{path}", "block", "path spelling"))
    for url in (
        "http://paste.test/raw/salaries",
        "http://paste.test/raw/salaries?any=query",
        "http://paste.test/raw/./salaries",
        "http://paste.test/raw//salaries",
        "http://paste.test/%72aw/salaries",
        "http://paste.test/raw/salaries#x",
        "http://PASTE.test/raw/salaries",
        "https://www.paste.test/raw/salaries",
        "http://paste.test/x/../raw/salaries",
        "http://paste.test/raw%2Fsalaries",
        "http://paste.test/raw/%73alaries?x=1&y=2",
    ):
        cases.append(_case(url, "warn", "exact page"))
    for url in (
        "http://paste.test/view?id=7",
        "http://paste.test/view?id=7#x",
        "http://paste.test/./view?id=7",
        "http://paste.test/vie%77?id=7",
        "https://paste.test/view?id=7",
        "http://paste.test/view?%69d=7",
        "http://paste.test/view?id=%37",
    ):
        cases.append(_case(url, "block", "exact page and query"))
    return cases


def _domain_spellings() -> list[Case]:
    cases = []
    for host in (
        "leak.test",
        "www.leak.test",
        "mail.leak.test",
        "x.y.z.leak.test",
        "LEAK.TEST.",
        "%6Ceak.test",
        "a-b.leak.test",
        "1.2.3.leak.test",
        "press2.leak.test",
        "xn--nxasmq6b.leak.test",
    ):
        for path in ("/", "/inbox?id=1", "/a/b/c/d/e/f/g/h.html"):
            cases.append(_case(f"https://{host}{path}", "warn", "domain and subdomains"))
    return cases


def _addresses() -> list[Case]:
    cases = []
    for host in (
        "10.11.12.13",
        "012.013.014.015",
        "0x0a.0x0b.0x0c.0x0d",
        "0xa.0xb.0xc.0xd",
        "0x0a0b0c0d",
        "168496141",
        "10.11.3085",
        "10.723981",
        "012.0xb.014.13",
        "0X0A.11.12.13",
        "10.11.12.13.",
        "00000012.11.12.13",
        "[::ffff:10.11.12.13]",
        "[::FFFF:a0b:c0d]",
        "[::ffff:0a0b:0c0d]",
        "[0:0:0:0:0:ffff:10.11.12.13]",
        "[::10.11.12.13]",
        "%31%30.11.12.13",
    ):
        for scheme in ("http", "https"):
            for path in ("/share", "/"):
                cases.append(_case(f"{scheme}://{host}{path}", "block", "IPv4 spellings"))
    for host in (
        "[2001:db8::7]",
        "[2001:DB8::7]",
        "[2001:0db8::0007]",
        "[2001:db8:0:0:0:0:0:7]",
        "[2001:db8:0::7]",
        "[2001:0DB8:0000:0000:0000:0000:0000:0007]",
        "[2001:db8::0:7]",
    ):
        for scheme in ("http", "https"):
            for port in ("", ":8443"):
                cases.append(_case(f"{scheme}://{host}{port}/share", "block", "IPv6 spellings"))
    return cases


def _international() -> list[Case]:
    cases = []
    for host in (
        "bücher-leaks.test",
        "BÜCHER-LEAKS.TEST",
        "bücher-leaks。test",
        "bücher-leaks．test",
        "xn--bcher-leaks-thb.test",
        "XN--BCHER-LEAKS-THB.TEST",
        "www.bücher-leaks.test",
        "b%C3%BCcher-leaks.test",
        "bu\u0308cher-leaks.test",
        "ｂüｃｈｅｒ-leaks.test",
    ):
        for scheme in ("http", "https"):
            for path in ("/", "/archive?page=2"):
                cases.append(_case(f"{scheme}://{host}{path}", "block", "international names"))
    for host in ("☃-⌘.test", "xn----dqo34k.test", "www.☃-⌘.test", "%E2%98%83-%E2%8C%98.test"):
        cases.append(_case(f"http://{host}/", "warn", "international names"))
    return cases


def _long() -> list[Case]:
    return [
        _case("http://mirror.test/", "block", "too long to canonicalize", ("a/", 33_000)),
        _case("http://files.test/dump/", "block", "too long to canonicalize", ("x", 66_000)),
        _case("https://leak.test/?q=", "warn", "too long to canonicalize", ("z", 66_000)),
        _case("http://mirror.test/", "block", "too long to canonicalize", ("%41", 22_000)),
        _case("http://www.mirror.test/x/", "block", "too long to canonicalize", ("%2e%2e/", 9_500)),
    ]


def _near_misses() -> list[Case]:
    cases = []
    for host in (
        "mirror.test.evil.test",
        "notmirror.test",
        "mirror-test.test",
        "mirror.tes",
        "mirror.testx",
        "amirror.test",
        "mirror.example",
        "mirrortest",
        "mirror.t3st",
        "mirr0r.test",
        "test.mirror",
        "mirror.test-evil.test",
        "evil.test",
        "xmirror.test",
        "mirror.tst",
        "leak.example",
        "leaktest.test",
        "leak.test.evil.test",
        "notleak.test",
        "eak.test",
        "leak.tes",
        "10.11.12.14",
        "10.11.12.130",
        "10.11.12.1",
        "11.11.12.13",
        "10.11.13.12",
        "[2001:db8::8]",
        "[2001:db8::7:0]",
        "[2001:db9::7]",
        "[::ffff:10.11.12.14]",
        "[::1]",
        "bucher-leaks.test",
        "bücher-leak.test",
        "xn--bcher-leaks-thb.test.evil.test",
        "snowman.test",
        "files.example",
        "paste.example",
        "bücher-leaks.example",
    ):
        for scheme in ("http", "https"):
            for path in PATHS:
                cases.append(_case(f"{scheme}://{host}{path}", None, "near miss: other host"))
    for url in (
        "http://press.leak.test/",
        "https://press.leak.test/story",
        "http://www.press.leak.test/x",
        "https://a.b.press.leak.test/",
    ):
        cases.append(_case(url, None, "near miss: allowed"))
    for path in (
        "/",
        "/dum",
        "/dumpx/",
        "/dumpx",
        "/dump",
        "/other/dump/",
        "/x/dump/y",
        "/dump%2e/",
        "/du%6Dp.x/",
        "/DUMP/",
        "/dump-2/",
        "/dum/p/",
        "/%2564ump",
    ):
        for scheme in ("http", "https"):
            cases.append(_case(f"{scheme}://files.test{path}", None, "near miss: other path"))
    for url in (
        "http://paste.test/raw/salariesx",
        "http://paste.test/raw/salaries/more",
        "http://paste.test/raw/salarie",
        "http://paste.test/raw/",
        "http://paste.test/raw",
        "http://paste.test/Raw/salaries",
        "http://paste.test/",
        "http://paste.test/raw/salaries.txt",
        "http://paste.test/raws/salaries",
        "http://paste.test/raw%2Fsalariesx",
    ):
        cases.append(_case(url, None, "near miss: other page"))
    for url in (
        "http://paste.test/view?id=8",
        "http://paste.test/view?id=7&x=1",
        "http://paste.test/view?id=77",
        "http://paste.test/view?ID=7",
        "http://paste.test/view",
        "http://paste.test/view%3Fid=7",
        "http://paste.test/view%3fid=7",
        "http://paste.test/view?x=1&id=7",
        "http://paste.test/views?id=7",
        "http://paste.test/view/?id=7",
        "http://paste.test/view?id=7/",
    ):
        cases.append(_case(url, None, "near miss: other query"))
    for url in (
        "http://clean.test/?u=http://mirror.test/",
        "http://clean.test/mirror.test/",
        "http://clean.test/#mirror.test",
        "http://clean.test/redirect?to=mirror.test",
        "http://clean.test/leak.test/",
        "http://clean.test/@mirror.test",
        "http://clean.test/%40mirror.test/",
        "http://clean.test/?mirror.test",
        "http://clean.test/files.test/dump/",
        "http://clean.test/10.11.12.13/",
        "http://mirror.test.clean.test/",
        "http://clean.test:80@evil.test/",
        "http://clean.test/__linkwarn/proceed",
        "http://clean.test/?linkwarn-proceed-code=x",
    ):
        cases.append(_case(url, None, "near miss: listed name elsewhere in the URL"))
    for url in (
        "http://0x0a.0x0b.0x0c.0x0e/",
        "http://168496142/",
        "http://10.11.3086/",
        "http://012.013.014.016/",
        "http://[::ffff:a0b:c0e]/",
        "http://10.11.12.13.14/",
        "http://0x10.0x11.0x12.0x13/",
    ):
        cases.append(_case(url, None, "near miss: other address"))
    return cases


def corpus() -> dict[str, Any]:
    listed = (
        _host_spellings()
        + _parser_spellings()
        + _path_spellings()
        + _domain_spellings()
        + _addresses()
        + _international()
        + _long()
    )
    return {
        "description": "Spellings of listed URLs (expect: the winning action) and near misses (expect: null) "
        "for the entries below. Made by tests/support/evasion.py; read by the Python and JavaScript tests.",
        "entries": [{"expression": e, "action": a} for e, a in ENTRIES],
        "cases": listed + _near_misses(),
    }


def render() -> str:
    return json.dumps(corpus(), ensure_ascii=False, indent=1) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
