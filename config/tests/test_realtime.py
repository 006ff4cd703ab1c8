"""config.realtime: the one after-commit push helper and who hears of a message."""

from __future__ import annotations

import pytest

from config import realtime

pytestmark = pytest.mark.django_db


def test_it_sends_after_commit_what_it_renders_then(broadcasts, django_capture_on_commit_callbacks):
    shown = {"count": 1}
    with django_capture_on_commit_callbacks(execute=True):
        realtime.broadcast_on_commit(
            "org.1", "bot.created", lambda: {"html": f"<p>{shown['count']}</p>"}, kind="bot"
        )
        shown["count"] = 2
        assert broadcasts == []
    assert broadcasts == [("org.1", "bot.created", {"kind": "bot", "html": "<p>2</p>"})]


def test_it_renders_once_for_every_group(broadcasts, django_capture_on_commit_callbacks):
    renders = []
    with django_capture_on_commit_callbacks(execute=True):
        realtime.broadcast_on_commit(
            ["conv.1", "org.1"], "message.created", lambda: renders.append(1) or {"n": 1}
        )
    assert broadcasts == [
        ("conv.1", "message.created", {"n": 1}),
        ("org.1", "message.created", {"n": 1}),
    ]
    assert renders == [1]


def test_once_sends_an_event_to_a_group_once_per_transaction(
    broadcasts, django_capture_on_commit_callbacks
):
    renders = []

    def render():
        renders.append(1)
        return {"html": "<section id=queue>"}

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            realtime.broadcast_on_commit("org.1", "console.queue", render, once=True)
        realtime.broadcast_on_commit("org.2", "console.queue", render, once=True)
    assert [(group, event) for group, event, _ in broadcasts] == [
        ("org.1", "console.queue"),
        ("org.2", "console.queue"),
    ]
    assert len(renders) == 2

    with django_capture_on_commit_callbacks(execute=True):  # the next transaction sends again
        realtime.broadcast_on_commit("org.1", "console.queue", render, once=True)
    assert [group for group, _, _ in broadcasts] == ["org.1", "org.2", "org.1"]


def test_without_once_every_send_goes_out(broadcasts, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        realtime.broadcast_on_commit("user.1", "user.deactivated")
        realtime.broadcast_on_commit("user.1", "user.deactivated")
    assert broadcasts == [("user.1", "user.deactivated", {})] * 2


def test_an_internal_note_is_for_the_members_only():
    assert realtime.message_groups(conversation_id=7, internal=True) == ["staff.conv.7"]
    assert realtime.message_groups(conversation_id=7, internal=False) == [
        "staff.conv.7",
        "conv.7",
    ]
