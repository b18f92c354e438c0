"""Passes on the listed origin: the one-time code a person's Proceed carries there, and the cookie it becomes.

The own origin (`proxy_addon.origin`) answers Proceed with a redirect to the
listed URL carrying a `CODE_PARAM`; `Passes.code_problem` says whether that
code is genuine, this client's, for this entry and unused, and `Passes.cookie`
makes the ``HttpOnly`` pass that then lets the client through the entry until it
expires (`Passes.holds`). Pass cookies are removed from every request before it
is forwarded (`take_passes`), so the listed site never sees one.
"""

from __future__ import annotations

import logging
import re
import time

from mitmproxy import http

from blocklists import Entry, Verdict
from proxy_addon.answers import client_of
from proxy_addon.origin import CODE_PARAM, SHARE_CODE_PARAM
from proxy_addon.policy import may_proceed
from proxy_addon.runtime import Runtime
from proxy_addon.tokens import Purpose, Token, TokenError, mint, verify

__all__ = ["PASS_COOKIE", "Passes", "strip_code", "take_passes"]

logger = logging.getLogger(__name__)

PASS_COOKIE = "linkwarn_pass"  # noqa: S105 - a cookie name, not a secret
_CODES_IN_QUERY = {
    name: re.compile(rf"([?&]){re.escape(name)}=([^&]*)") for name in (CODE_PARAM, SHARE_CODE_PARAM)
}


def take_passes(request: http.Request) -> list[str]:
    """Remove every pass cookie from the request (none is ever forwarded) and return their values."""
    if PASS_COOKIE not in request.headers.get("cookie", ""):
        return []
    values = list(request.cookies.get_all(PASS_COOKIE))
    request.cookies.pop(PASS_COOKIE, None)
    if not request.cookies:
        request.headers.pop("cookie", None)
    return values


def strip_code(path: str, param: str = CODE_PARAM) -> tuple[str, str | None]:
    """*path* without a one-time code parameter, and the code (None when there is none)."""
    match = _CODES_IN_QUERY[param].search(path)
    if match is None:
        return path, None
    rest = path[match.end() :]
    if match.group(1) == "?":
        rest = "?" + rest[1:] if rest.startswith("&") else rest
    return path[: match.start()] + rest, match.group(2)


class Passes:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def holds(self, flow: http.HTTPFlow, passes: list[str], entry: Entry) -> bool:
        """Whether one of the request's pass cookies lets this client through *entry* now."""
        settings = self.runtime.require_settings()
        if not passes or not may_proceed(entry.action, settings.proceed):
            return False
        client, now = client_of(flow), time.time()
        for value in passes:
            try:
                granted = verify(self.runtime.secret, value, purpose=Purpose.PASS, client=client, now=now)
            except TokenError as exc:
                logger.info("linkwarn: ignoring a proceed pass: %s", exc)
                continue
            if granted.entry_key == entry.key:
                return True
        return False

    def code_problem(self, flow: http.HTTPFlow, code: str, entry: Entry) -> str | None:
        """Why a one-time proceed code is refused, or None (and it is spent) when it is good."""
        now = time.time()
        try:
            token = verify(self.runtime.secret, code, purpose=Purpose.CODE, client=client_of(flow), now=now)
        except TokenError as exc:
            return str(exc)
        if token.entry_key != entry.key:
            return "minted for another entry"
        if not self.runtime.use_code(token.nonce, token.expires_at, now):
            return "already used"
        return None

    def cookie(self, flow: http.HTTPFlow, verdict: Verdict) -> str:
        """The Set-Cookie value of a pass through *verdict*'s entry for this client, for the proceed time."""
        entry, winner = verdict.entry, verdict.winner
        assert entry is not None
        assert winner is not None
        seconds = self.runtime.require_settings().proceed_seconds
        token = Token(Purpose.PASS, client_of(flow), entry.key, int(time.time()) + seconds)
        attributes = [f"{PASS_COOKIE}={mint(self.runtime.secret, token)}", "Path=/", f"Max-Age={seconds}",
                      "HttpOnly", "SameSite=Lax"]  # fmt: skip
        if flow.request.scheme == "https":
            attributes.append("Secure")
        # A pass for a whole domain entry is sent to every host under it.
        host = winner.expression.rstrip("/")
        request_host = flow.request.pretty_host.lower().rstrip(".")
        if "/" not in host and request_host.endswith("." + host) and not host.replace(".", "").isdigit():
            attributes.append(f"Domain={host}")
        return "; ".join(attributes)
