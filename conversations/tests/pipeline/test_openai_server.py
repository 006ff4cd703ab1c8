"""The test double speaks the protocol the real `openai` client expects."""

import openai
import pytest

from conversations.tests.openai_server import Reply

TOOL = {"type": "function", "function": {"name": "classify_message", "parameters": {}}}


@pytest.fixture
def client(llm_server):
    return openai.OpenAI(base_url=llm_server.url, api_key="sk-test", max_retries=0, timeout=1)


def test_it_streams_content_and_usage(client, llm_server):
    llm_server.script("stream", Reply(text="Hello there."))

    chunks = list(
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there."
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.prompt_tokens == 42


def test_it_streams_a_tool_call_in_pieces(client, llm_server):
    llm_server.script("tool", Reply(tool={"name": "classify_message", "arguments": {"a": "b"}}))

    chunks = list(
        client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], tools=[TOOL], stream=True
        )
    )

    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices]
    pieces = [call[0].function.arguments for call in calls if call]
    assert calls[1][0].function.name == "classify_message"
    assert "".join(pieces) == '{"a": "b"}'
    assert len(pieces) > 2


def test_it_answers_a_tool_call_whole_and_records_the_request(client, llm_server):
    llm_server.script("tool", Reply(tool={"name": "classify_message", "arguments": {"a": 1}}))

    response = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], tools=[TOOL]
    )

    assert response.choices[0].message.tool_calls[0].function.arguments == '{"a": 1}'
    assert llm_server.requests[0]["tools"] == [TOOL]


@pytest.mark.parametrize(
    "reply,error",
    [
        (Reply(status=500), openai.InternalServerError),
        (Reply(delay=2), openai.APITimeoutError),
        (Reply(text="a b c", cut_after=2), openai.APIConnectionError),
    ],
)
def test_it_fails_as_scripted(client, llm_server, reply, error):
    llm_server.script("stream", reply)

    with pytest.raises(error):
        list(
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
