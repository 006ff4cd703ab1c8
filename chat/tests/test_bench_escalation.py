"""bench_escalation's matching of the console's frames to escalations: a queue partial counts
for the conversations it lists, and nothing else does."""

import pytest

from chat.management.commands.bench_escalation import frame_conversation_ids
from escalation.live import queue_html


@pytest.mark.django_db
def test_the_pushed_queue_partial_counts_for_the_conversations_it_lists(carlas_chat):
    from escalation.services import escalation_open

    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    frame = queue_html(organization_id=carlas_chat.bot.organization_id)
    assert frame_conversation_ids(frame) == {carlas_chat.pk}


def test_other_frames_count_for_nothing():
    message = '<div id="m-7" data-conversation-id="41" class="msg">Hello</div>'
    assert frame_conversation_ids(message) == set()
    assert (
        frame_conversation_ids('{"event": "conversation.updated", "conversation": {"id": 41}}')
        == set()
    )
    mine = '<section id="mine"><li data-conversation-id="41"></li></section>'
    assert frame_conversation_ids(mine) == set()
