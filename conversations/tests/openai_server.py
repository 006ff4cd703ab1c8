"""A local server speaking the OpenAI Chat Completions protocol, for tests that drive the real
`openai` client: `POST /v1/chat/completions`, plain JSON or streamed as Server-Sent Events
(`data: {chunk}` … `data: [DONE]`, content deltas, tool-call deltas, a final usage chunk).

Each request is answered by a scripted `Reply`, taken from a queue per kind of request:
"tool" (the request offers tools), "stream" (stream=true) or "complete" (anything else). With
an empty queue a harmless default answers (see `_default`), so a test scripts only the calls it
is about. A reply can wait before answering, stall mid-stream, cut the connection, send a
broken chunk or fail with an HTTP status; every request is recorded for assertions on prompts.

    server = OpenAIServer()
    server.script("stream", Reply(text="Standard shipping takes 3 to 5 days [1]."))
    ... OpenAI(base_url=server.url, api_key="sk-test") ...
    server.requests_of("stream")[0]["messages"]
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    text: str = ""
    # A tool call instead of text: {"name": "classify_message", "arguments": {...}}.
    tool: dict | None = None
    status: int = 200
    delay: float = 0.0  # seconds before the response starts (a slow first token)
    pause: float = 0.0  # seconds between streamed chunks
    stall_after: int | None = None  # after this many chunks, go silent for `stall` seconds
    stall: float = 0.0
    cut_after: int | None = None  # after this many chunks, drop the connection mid-stream
    malformed: bool = False  # send a data line that is not JSON after the first chunk
    usage: dict | None = field(
        default_factory=lambda: {"prompt_tokens": 42, "completion_tokens": 7}
    )
    chunks: list[str] | None = None  # the content pieces; default: the text word by word

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return self.chunks
        return re.findall(r"\S+\s*|\s+", self.text)


def kind_of(body: dict) -> str:
    if body.get("tools"):
        return "tool"
    return "stream" if body.get("stream") else "complete"


def _default(body: dict) -> Reply:
    """Unscripted calls get an answer that changes nothing: the classifier says "answerable",
    a rewrite returns the customer's last message as it is, an answer says it doesn't know."""
    kind = kind_of(body)
    if kind == "tool":
        name = body["tools"][0]["function"]["name"]
        return Reply(tool={"name": name, "arguments": {"category": "answerable"}})
    if kind == "complete":
        last = [m for m in body.get("messages", []) if m.get("role") == "user"]
        return Reply(text=str(last[-1]["content"]) if last else "")
    return Reply(text="I don't know.")


class OpenAIServer:
    def __init__(self) -> None:
        self.requests: list[dict] = []  # each: the JSON body plus "_path" and "_auth"
        self.queues: dict[str, deque[Reply]] = {k: deque() for k in ("tool", "stream", "complete")}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def script(self, kind: str, *replies: Reply) -> None:
        """Queue replies for the next requests of this kind ("tool", "stream", "complete")."""
        self.queues[kind].extend(replies)

    def requests_of(self, kind: str) -> list[dict]:
        return [r for r in self.requests if kind_of(r) == kind]

    def next_reply(self, body: dict) -> Reply:
        with self._lock:
            self.requests.append(body)
            queue = self.queues[kind_of(body)]
            return queue.popleft() if queue else _default(body)

    def sleep(self, seconds: float) -> None:
        # Interruptible, so stopping the server never waits for a scripted delay.
        if seconds:
            self._stopping.wait(seconds)

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()


def _completion(body: dict, reply: Reply) -> dict:
    message: dict = {"role": "assistant", "content": reply.text}
    finish = "stop"
    if reply.tool is not None:
        message = {"role": "assistant", "content": None, "tool_calls": [_tool_call(reply)]}
        finish = "tool_calls"
    usage = reply.usage or {"prompt_tokens": 0, "completion_tokens": 0}
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {**usage, "total_tokens": sum(usage.values())},
    }


def _tool_call(reply: Reply) -> dict:
    return {
        "id": "call_1",
        "type": "function",
        "function": {"name": reply.tool["name"], "arguments": json.dumps(reply.tool["arguments"])},
    }


def _chunk(body: dict, delta: dict, finish: str | None = None) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _stream_events(body: dict, reply: Reply) -> list[dict | str]:
    events: list[dict | str] = [_chunk(body, {"role": "assistant", "content": ""})]
    if reply.tool is not None:
        call = _tool_call(reply)
        arguments = call["function"]["arguments"]
        call["function"]["arguments"] = ""
        events.append(_chunk(body, {"tool_calls": [{"index": 0, **call}]}))
        for start in range(0, len(arguments), 8):
            piece = {"index": 0, "function": {"arguments": arguments[start : start + 8]}}
            events.append(_chunk(body, {"tool_calls": [piece]}))
        events.append(_chunk(body, {}, "tool_calls"))
    else:
        events.extend(_chunk(body, {"content": piece}) for piece in reply.pieces())
        events.append(_chunk(body, {}, "stop"))
    if reply.usage is not None and (body.get("stream_options") or {}).get("include_usage"):
        usage = {**reply.usage, "total_tokens": sum(reply.usage.values())}
        events.append({**_chunk(body, {}), "choices": [], "usage": usage})
    if reply.malformed:
        events.insert(1, "{this is not json")
    events.append("[DONE]")
    return events


def _handler(owner: OpenAIServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle(self):
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (a timeout test): nothing left to say

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            body["_path"] = self.path
            body["_auth"] = self.headers.get("Authorization", "")
            if not self.path.endswith("/chat/completions"):
                return self._json(404, {"error": {"message": f"no route {self.path}"}})
            reply = owner.next_reply(body)
            owner.sleep(reply.delay)
            if reply.status != 200:
                error = {"error": {"message": "scripted failure", "type": "server_error"}}
                return self._json(reply.status, error)
            if not body.get("stream"):
                return self._json(200, _completion(body, reply))
            self._stream(body, reply)

        def _json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, body: dict, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for sent, event in enumerate(_stream_events(body, reply)):
                if reply.cut_after is not None and sent >= reply.cut_after:
                    # No terminating chunk: the client sees a body that ends mid-way.
                    self.close_connection = True
                    return
                if reply.stall_after is not None and sent == reply.stall_after:
                    owner.sleep(reply.stall)
                owner.sleep(reply.pause)
                data = event if isinstance(event, str) else json.dumps(event)
                payload = f"data: {data}\n\n".encode()
                self.wfile.write(f"{len(payload):X}\r\n".encode() + payload + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def log_message(self, *args):
            pass

    return Handler
