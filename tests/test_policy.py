"""The answer policy: one table of what each action does, and what a verdict means for a request."""

from __future__ import annotations

import pytest

from blocklists import Action
from proxy_addon.policy import BEHAVIOUR, Answer, RequestKind, answer, behaviour_table, may_proceed

NAV, SUB, WS, CONNECT = (
    RequestKind.NAVIGATION,
    RequestKind.SUBRESOURCE,
    RequestKind.WEBSOCKET,
    RequestKind.CONNECT,
)


@pytest.mark.parametrize(
    ("action", "kind", "has_pass", "proceed", "expected"),
    [
        (None, NAV, False, True, Answer.FORWARD),
        (Action.ALLOW, NAV, False, True, Answer.FORWARD),
        (Action.AUDIT, NAV, False, True, Answer.AUDIT),
        (Action.AUDIT, SUB, True, False, Answer.AUDIT),
        (Action.WARN, NAV, False, True, Answer.PAGE),
        (Action.WARN, SUB, False, True, Answer.REFUSE),
        (Action.WARN, WS, False, True, Answer.REFUSE),
        (Action.WARN, CONNECT, False, True, Answer.REFUSE),
        (Action.WARN, NAV, True, True, Answer.FORWARD),  # a valid pass
        (Action.WARN, SUB, True, True, Answer.FORWARD),
        (Action.WARN, NAV, True, False, Answer.PAGE),  # proceeding switched off: passes are void
        (Action.BLOCK, NAV, True, True, Answer.PAGE),  # a pass never lifts a block
        (Action.BLOCK, SUB, False, True, Answer.REFUSE),
    ],
)
def test_answers(
    action: Action | None, kind: RequestKind, has_pass: bool, proceed: bool, expected: Answer
) -> None:
    assert answer(action, kind, has_pass=has_pass, proceed_allowed=proceed) is expected


def test_may_proceed_is_warn_only_and_only_when_allowed() -> None:
    assert [a for a in Action if may_proceed(a, True)] == [Action.WARN]
    assert not any(may_proceed(a, False) for a in Action)
    assert not may_proceed(None, True)


def test_the_table_covers_every_action_and_ranks_as_matching_does() -> None:
    assert set(BEHAVIOUR) == set(Action)
    assert all(BEHAVIOUR[a].rank == a.priority for a in Action)
    table = behaviour_table()
    assert table["warn"] == {"rank": 1, "shows_page": True, "may_proceed": True, "logged": True,
                             "browser_enforces": True}  # fmt: skip
