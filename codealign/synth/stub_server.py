"""A local OpenAI-compatible chat endpoint that answers with canned completions.

For the tests and the synth benchmark, and for a dry run of `backend: openai` without
an account. It serves `POST /v1/chat/completions` on 127.0.0.1 from a thread per
connection, counts every request, and can be told to be slow (`delay`), to fail the
next N requests with a status (`fail`), or to answer with any text or raw bytes
(`responder`). The default answer is a small valid exercise whose function differs per
prompt and seed, so a synth run against it accepts what it gets.

    with StubServer(delay=0.02) as server:
        backend = OpenAIBackend(server.base_url, "stub")
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a full listen backlog would stall clients for a second

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is part of the tests, not a server fault.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


Responder = Callable[[dict[str, Any]], "str | bytes | None"]


def default_answer(body: dict[str, Any]) -> str:
    """A valid answer in the synth response format, different for each prompt and seed."""
    key = json.dumps([body.get("messages"), body.get("seed")], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()
    name, shift = f"shift_{digest[:8]}", int(digest[8:10], 16) % 50 + 1
    return (
        f"### Question\nWrite a function {name}(x) that returns x plus {shift}.\n"
        f"### Code\n```python\ndef {name}(x):\n    return x + {shift}\n\n"
        f"assert {name}(0) == {shift}\nassert {name}(-1) == {shift - 1}\n```\n"
        "### Keywords\nInteger, Add\n"
    )


class StubServer:
    """See the module docstring. `hits` counts POSTs; `bodies` keeps their JSON."""

    def __init__(self, responder: Responder | None = None, delay: float = 0.0) -> None:
        self.responder = responder or default_answer
        self.delay = delay
        self.hits = 0
        self.bodies: list[dict[str, Any]] = []
        self._failures: list[tuple[int, float | None]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail(self, count: int, status: int = 500, retry_after: float | None = None) -> None:
        """Answer the next `count` requests with `status` (and a Retry-After header)."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * count)

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stub._lock:
                    stub.hits += 1
                    failure = stub._failures.pop(0) if stub._failures else None
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                if stub.delay:
                    time.sleep(stub.delay)
                if failure is not None:
                    status, retry_after = failure
                    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                    self._send(status, b'{"error": {"message": "stub failure"}}', headers)
                    return
                body = json.loads(raw)
                with stub._lock:
                    stub.bodies.append(body)
                answer = stub.responder(body)
                if isinstance(answer, bytes):
                    self._send(200, answer)
                    return
                reply = {
                    "id": f"stub-{stub.hits}",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": answer},
                            "finish_reason": "stop",
                        }
                    ],
                }
                self._send(200, json.dumps(reply).encode())

        return Handler
