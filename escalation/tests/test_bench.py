"""bench_escalation's matching of the console's frames to escalations: JSON today, the
console's HTML partials once it pushes them."""

from escalation.management.commands.bench_escalation import frame_conversation_ids


def test_a_json_update_counts_only_once_the_conversation_waits():
    waiting = '{"event": "conversation.updated", "conversation": {"id": 41, "status": "waiting"}}'
    created = '{"event": "conversation.created", "conversation": {"id": 41, "status": "ai"}}'
    assert frame_conversation_ids(waiting) == {41}
    assert frame_conversation_ids(created) == set()


def test_an_html_partial_is_matched_by_the_conversation_id_it_carries():
    row = '<tr id="conversation-41" hx-swap-oob="true" data-conversation-id="41">…</tr>'
    assert frame_conversation_ids(row) == {41}
    assert frame_conversation_ids('<div id="queue-count">3</div>') == set()
    assert frame_conversation_ids('<li id="conversation-410">') == {410}
