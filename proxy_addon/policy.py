"""The answer policy: what a verdict means for one kind of request. Pure.

`BEHAVIOUR` is the one table of what each action does; the proxy, the local
API and (through ``/v1/status``) the extension read it instead of restating it.
`answer` turns an action, the kind of request and whether the client holds a
valid pass into what the proxy does, and `may_proceed` is the one place that
says whether a person may go on past a warning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from blocklists import Action

__all__ = ["BEHAVIOUR", "Answer", "Behaviour", "RequestKind", "answer", "behaviour_table", "may_proceed"]


class RequestKind(StrEnum):
    NAVIGATION = "navigation"  # a top-level page load: the one kind that gets the warning page
    SUBRESOURCE = "subresource"  # images, scripts, fetches, frames
    WEBSOCKET = "websocket"
    CONNECT = "connect"  # a tunnel that will not be intercepted: the host is all there is


class Answer(StrEnum):
    FORWARD = "forward"  # unlisted, allowed, or proceeded: sent on untouched
    AUDIT = "audit"  # sent on, and logged
    PAGE = "page"  # redirected to the warning page on linkwarn's own origin
    REFUSE = "refuse"  # a short 403 naming the entry


@dataclass(frozen=True, slots=True)
class Behaviour:
    rank: int  # at equal specificity the higher rank wins
    shows_page: bool  # a navigation gets the warning page
    may_proceed: bool  # the page offers a way through (when proceeding is allowed at all)
    logged: bool  # a hit is an event
    browser_enforces: bool  # the extension may turn a plaintext entry into a browser rule


BEHAVIOUR: dict[Action, Behaviour] = {
    Action.ALLOW: Behaviour(rank=Action.ALLOW.priority, shows_page=False, may_proceed=False, logged=False,
                            browser_enforces=True),
    Action.BLOCK: Behaviour(rank=Action.BLOCK.priority, shows_page=True, may_proceed=False, logged=True,
                            browser_enforces=True),
    Action.WARN: Behaviour(rank=Action.WARN.priority, shows_page=True, may_proceed=True, logged=True,
                           browser_enforces=True),
    Action.AUDIT: Behaviour(rank=Action.AUDIT.priority, shows_page=False, may_proceed=False, logged=True,
                            browser_enforces=False),
}  # fmt: skip


def may_proceed(action: Action | None, proceed_allowed: bool) -> bool:
    """Whether a person may go on past this action's warning."""
    return action is not None and proceed_allowed and BEHAVIOUR[action].may_proceed


def answer(action: Action | None, kind: RequestKind, *, has_pass: bool, proceed_allowed: bool) -> Answer:
    """What the proxy does with a request whose winning entry has *action* (None: nothing listed)."""
    if action is None or action is Action.ALLOW:
        return Answer.FORWARD
    if not BEHAVIOUR[action].shows_page:
        return Answer.AUDIT
    if has_pass and may_proceed(action, proceed_allowed):
        return Answer.FORWARD
    if kind is RequestKind.NAVIGATION:
        return Answer.PAGE
    return Answer.REFUSE


def behaviour_table() -> dict[str, Any]:
    """`BEHAVIOUR` as JSON data, for the API and the extension."""
    return {str(action): asdict(behaviour) for action, behaviour in BEHAVIOUR.items()}
