"""The openai backend against a local OpenAI-compatible stub server started by each test."""

import json
import socket

import pytest

from codealign.errors import CodealignError
from codealign.synth.backends import OpenAIBackend, Request, ResponseCache
from codealign.synth.parse import Parsed, Rejection, parse_response
from codealign.synth.stub_server import StubServer


def requests(count, prefix="p"):
    return [
        Request(f"{prefix}{i}", ({"role": "user", "content": f"{prefix} {i}"},), 0.7, 64, i)
        for i in range(count)
    ]


@pytest.fixture
def server():
    with StubServer() as stub:
        yield stub


def backend(server, tmp_path=None, sleeps=None, **kwargs):
    cache = ResponseCache(tmp_path / "cache.sqlite") if tmp_path is not None else None
    sleep = sleeps.append if sleeps is not None else (lambda s: None)
    return OpenAIBackend(server.base_url, "stub-model", cache=cache, sleep=sleep, **kwargs)


def test_answers_come_back_in_order_and_parse(server, monkeypatch):
    monkeypatch.setenv("STUB_KEY", "sekret")
    responses = backend(server, api_key_env="STUB_KEY", concurrency=4).complete(
        requests(12), progress=False
    )
    assert server.hits == 12
    assert all(isinstance(parse_response(r.text), Parsed) for r in responses)
    by_content = {b["messages"][0]["content"]: b for b in server.bodies}
    for i, response in enumerate(responses):
        body = by_content[f"p {i}"]
        assert (body["model"], body["seed"], body["max_tokens"]) == ("stub-model", i, 64)
        assert "shift_" in response.text


def test_rerun_is_served_from_the_cache_with_zero_requests(server, tmp_path):
    first = backend(server, tmp_path).complete(requests(20), progress=False)
    assert server.hits == 20
    again = backend(server, tmp_path)
    second = again.complete(requests(20), progress=False)
    assert server.hits == 20
    assert [r.text for r in second] == [r.text for r in first]
    assert all(r.cached for r in second) and again.stats["cache_hits"] == 20
    # A changed generation param is a different request.
    changed = [Request(r.id, r.messages, 0.2, r.max_tokens, r.seed) for r in requests(3)]
    backend(server, tmp_path).complete(changed, progress=False)
    assert server.hits == 23


def test_crash_midway_resumes_from_what_was_answered(server, tmp_path):
    server.fail(1000, status=401)  # the run stops at once on a rejected key ...
    with pytest.raises(CodealignError, match="HTTP 401"):
        backend(server, tmp_path, concurrency=1).complete(requests(5), progress=False)
    server._failures.clear()
    backend(server, tmp_path).complete(requests(5)[:2], progress=False)
    hits = server.hits
    backend(server, tmp_path).complete(requests(5), progress=False)  # ... and resumes
    assert server.hits == hits + 3


@pytest.mark.parametrize("status", [500, 503, 429])
def test_retries_with_exponential_backoff(server, status):
    server.fail(3, status=status)
    sleeps = []
    b = backend(server, sleeps=sleeps, backoff=1.0, backoff_max=60.0, concurrency=1)
    (response,) = b.complete(requests(1), progress=False)
    assert isinstance(parse_response(response.text), Parsed)
    assert server.hits == 4 and b.stats["retries"] == 3
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        assert 0.5 * 2**attempt <= delay <= 2**attempt


def test_retry_after_is_honoured_and_delays_are_capped(server):
    server.fail(2, status=429, retry_after=7)
    sleeps = []
    backend(server, sleeps=sleeps, backoff=0.1, backoff_max=5.0).complete(
        requests(1), progress=False
    )
    assert sleeps == [5.0, 5.0]


def test_giving_up_after_retries_is_a_counted_rejection(server):
    server.fail(10, status=502)
    (response,) = backend(server, max_retries=2).complete(requests(1), progress=False)
    assert response.text is None and response.error == "api_error"
    assert "gave up after 3 attempts: HTTP 502" in response.detail
    assert server.hits == 3


def test_client_error_rejects_only_that_request(server):
    server.fail(1, status=400)
    responses = backend(server, concurrency=1).complete(requests(3), progress=False)
    assert [r.error for r in responses] == ["api_error", None, None]


def test_budget_counts_every_http_request_and_rejects_the_rest(server, tmp_path):
    server.fail(2, status=500)
    b = backend(server, tmp_path, budget=6, concurrency=1)
    responses = b.complete(requests(8), progress=False)
    assert server.hits == 6  # two retries and four answers
    assert [r.error for r in responses] == [None] * 4 + ["budget_exhausted"] * 4
    assert b.stats["budget_exhausted"] == 4
    # A rerun with a larger budget pays only for what is missing.
    backend(server, tmp_path, budget=10).complete(requests(8), progress=False)
    assert server.hits == 10


def test_unreachable_endpoint_is_one_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens here
    b = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff=0.0)
    with pytest.raises(CodealignError) as info:
        b.complete(requests(4), progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert f"127.0.0.1:{port}/v1/chat/completions: cannot reach the endpoint" in message
    assert "synth.openai_base_url" in message


def test_wrong_path_names_the_params_keys(server):
    b = OpenAIBackend(server.base_url + "/nope", "m", sleep=lambda s: None)
    with pytest.raises(CodealignError, match="HTTP 404; check synth.openai_base_url"):
        b.complete(requests(1), progress=False)


def test_slow_server_times_out_and_is_retried(server):
    server.delay = 0.5
    b = backend(server, timeout=0.1, max_retries=1)
    (response,) = b.complete(requests(1), progress=False)
    assert response.error == "api_error" and "timed out" in response.detail.lower()
    assert server.hits == 2


def test_malformed_and_non_utf8_answers_are_counted_rejections(tmp_path):
    non_utf8 = b'{"choices": [{"message": {"content": "### Question\\nq \xff"}}]}'
    bodies = iter([b"not json", json.dumps({"choices": []}).encode(), non_utf8])
    with StubServer(responder=lambda body: next(bodies)) as stub:
        cache = ResponseCache(tmp_path / "c.sqlite")
        b = OpenAIBackend(stub.base_url, "m", cache=cache, concurrency=1)  # bodies in order
        responses = b.complete(requests(3), progress=False)
        assert [r.error for r in responses[:2]] == ["api_error", "api_error"]
        assert "malformed completion" in responses[0].detail
        rejection = parse_response(responses[2].text)
        assert isinstance(rejection, Rejection) and rejection.reason == "non_utf8"
        # The cached copy of a non-UTF-8 answer is still rejected on a rerun.
        (cached,) = OpenAIBackend(
            stub.base_url, "m", cache=ResponseCache(tmp_path / "c.sqlite")
        ).complete(requests(3)[2:], progress=False)
        assert cached.cached and parse_response(cached.text).reason == "non_utf8"
