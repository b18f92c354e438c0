"""The Unicode tables the extension's canonicalization needs and JavaScript cannot ask for.

``python -m tests.support.jstables > extension/lib/unicode.js`` writes them;
tests/test_extension_js.py checks that the committed file is what this makes.

- Python's ``str.isdigit`` and ``str.isdecimal`` (``re``'s ``\\d``) decide what
  `blocklists.canonical` takes for a port; JavaScript has no property for
  Numeric_Type=Digit, and its ``\\p{Nd}`` follows the engine's Unicode version.
- The right-to-left characters (bidi classes R, AL, AN): JavaScript has no
  property for bidi classes, and the URL parsers the extension has disagree
  with ada on the IDNA bidi rule (Node's checks none, Chromium's ICU checks
  whole names), so a host with one is left to the proxy.
- The code points whose UTS #46 mapping holds an ASCII character the WHATWG URL
  parser refuses in a host (``/``, ``%``, ``:``...), one of the placeholders the
  extension puts there instead (``$``, ``,``, ``!``), or a dot: ada's
  ``idna_to_ascii``, which the proxy uses, maps them; the URL parser, which the
  extension has, refuses them. The extension maps them itself first, so that it
  knows where the labels are. Each mapping is checked against ada.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Callable, Iterator

import ada_url
import idna

# ASCII that the URL host parser refuses (forbidden domain code points), the placeholders and the dot.
TARGETS = frozenset([chr(c) for c in range(0x21)] + list("#%/:<>?@[\\]^|\x7f$,!."))


def _ranges(test: Callable[[str], bool]) -> Iterator[tuple[int, int]]:
    start = None
    for code in range(0x110001):
        inside = code < 0x110000 and not 0xD800 <= code <= 0xDFFF and test(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            yield start, code - 1
            start = None


def _mapped() -> dict[int, str]:
    found = {}
    for code in range(0x80, 0x110000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        try:
            mapping = idna.uts46_remap(char, std3_rules=False, transitional=False)
        except idna.InvalidCodepoint:
            continue
        if TARGETS.isdisjoint(mapping):
            continue
        # ada, which the proxy uses, must map it the same way.
        if ada_url.idna_to_ascii("z" + char) != ada_url.idna_to_ascii("z" + mapping):
            raise SystemExit(f"ada and idna disagree on U+{code:04X}")
        found[code] = mapping
    # And no other code point may map there in ada (a newer idna could know fewer).
    for code in range(0x80, 0x110000):
        if code not in found and not 0xD800 <= code <= 0xDFFF:
            ascii_form = ada_url.idna_to_ascii("z" + chr(code)).decode("ascii")
            if not TARGETS.isdisjoint(ascii_form):
                raise SystemExit(f"ada maps U+{code:04X} to {ascii_form!r}; idna does not")
    return found


def _right_to_left(char: str) -> bool:
    return unicodedata.bidirectional(char) in ("R", "AL", "AN")


def render() -> str:
    rtl = list(_ranges(_right_to_left))
    digits = list(_ranges(str.isdigit))
    decimals = list(_ranges(str.isdecimal))
    mapped = _mapped()
    lines = [
        "// @ts-check",
        "/**",
        " * Unicode tables for canonical.js, made by `python -m tests.support.jstables`",
        " * (tests/test_extension_js.py checks this file is what it makes). Do not edit.",
        f" * Python {sys.version_info.major}.{sys.version_info.minor}, "
        f"Unicode {unicodedata.unidata_version}, idna {idna.__version__}.",
        " */",
        "",
        "/** What Python's str.isdigit() accepts: [first, last] code points. */",
        f"export const DIGIT_RANGES = {json.dumps(digits, separators=(',', ':'))};",
        "",
        "/** What Python's str.isdecimal() (and re's \\d) accepts. */",
        f"export const DECIMAL_RANGES = {json.dumps(decimals, separators=(',', ':'))};",
        "",
        "/** Right-to-left characters (bidi classes R, AL and AN), which the IDNA bidi rule is about. */",
        f"export const RTL_RANGES = {json.dumps(rtl, separators=(',', ':'))};",
        "",
        "/** Code points whose UTS #46 mapping holds a dot or ASCII a URL host refuses, and the mapping. */",
        "export const PUNCTUATION_MAPPINGS = new Map([",
        *(f"  [0x{code:04X}, {json.dumps(text)}]," for code, text in sorted(mapped.items())),
        "]);",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
