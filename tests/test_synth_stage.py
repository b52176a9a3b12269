"""The synth stage end to end: tiny world, sandbox verdicts, openai via a stub, the CLI."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from stage_scripts import stage

from codealign.params.synth import SynthParams
from codealign.synth.backends import Backend, Response, TinyWorldBackend
from codealign.synth.pipeline import load_seed_sets, run_synth
from codealign.synth.stub_server import StubServer, default_answer
from codealign.synth.verify import SandboxVerifier
from codealign.tinyworld.templates import TEMPLATES

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"items_per_cycle": 8, "s3_requests": 16, "s4_requests": 8, "s5_requests": 16}


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory):
    from codealign.curation.seed import tinyworld_seed_sets, write_seed_sets
    from codealign.params import load_params

    params = load_params(ROOT / "params" / "smoke.yaml")
    out = tmp_path_factory.mktemp("seed")
    write_seed_sets(tinyworld_seed_sets(params["data"], params.seed), out)
    return out


def synth_params(**changes):
    return SynthParams.from_dict({**SMALL, **changes}, "synth")


def read(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_tinyworld_run_refuses_what_it_cannot_express_and_never_copies(seed_dir):
    seed = load_seed_sets(seed_dir)
    params = synth_params(s3_requests=60, s5_requests=60)
    result = run_synth(seed, params, TinyWorldBackend(seed.known_prompts), 0, progress=False)
    sets, metrics = result.sets, result.metrics
    assert sets["s1_star"][: len(seed.s1)] == seed.s1
    assert len(sets["s1_star"]) == len(seed.s1) + metrics["s1_star"]["accepted"]
    assert sets["s2"] == seed.s2
    assert metrics["s5"]["rejected_by_reason"].get("refusal", 0) > 0
    for rejection in result.rejected:
        assert rejection["reason"] == "refusal"
        wanted = set(rejection["requested_keywords"] or ())
        need = 1 if len(wanted) <= 1 else 2
        # Refused only where no template expresses the request (or every fit was known).
        assert all(len(wanted & set(t.keywords)) < need for t in TEMPLATES) or rejection[
            "raw"
        ].startswith("REFUSE: no new task")
    new = sets["s1_star"][len(seed.s1) :] + sets["s3"] + sets["s4"] + sets["s5"]
    assert new and all(r["tests"] for r in new)
    assert not any(r["code"].startswith(p) for r in new for p in seed.known_prompts)
    prompts = [r["code"].split('"""')[1] + r["code"].split("\n")[0] for r in new]
    assert len(set(prompts)) == len(prompts)


def test_tinyworld_answers_share_keywords_with_the_request(seed_dir):
    seed = load_seed_sets(seed_dir)
    backend = TinyWorldBackend(seed.known_prompts)
    from codealign.synth import strategies
    from codealign.synth.parse import parse_response

    params = synth_params()
    for request in strategies.strategy2_requests(seed.s2, params, 0):
        parsed = parse_response(backend.answer(request))
        assert set(request.meta["keywords"]) <= set(parsed.keywords)
    for request in strategies.strategy1_requests(seed.s2, seed.vocabulary, params, 0):
        parsed = parse_response(backend.answer(request))
        if hasattr(parsed, "keywords"):
            assert len(set(request.meta["keywords"]) & set(parsed.keywords)) >= 2


def test_run_is_deterministic_for_a_seed(seed_dir):
    seed = load_seed_sets(seed_dir)

    def run(master_seed):
        backend = TinyWorldBackend(seed.known_prompts)
        return run_synth(seed, synth_params(), backend, master_seed, progress=False)

    first, second, other = run(3), run(3), run(4)
    assert first.sets == second.sets and first.rejected == second.rejected
    assert first.sets["s3"] != other.sets["s3"]


class Canned(Backend):
    """Answers each request with the next canned text."""

    name = "canned"

    def __init__(self, answers):
        super().__init__()
        self.answers = list(answers)

    def _complete(self, requests, store, bar):
        for position, _ in enumerate(requests):
            store(position, Response(self.answers.pop(0) if self.answers else None))


def answer(code):
    return f"### Question\nWrite f.\n### Code\n```python\n{code}\n```\n### Keywords\nA, B\n"


def test_sandbox_rejects_code_that_fails_its_own_tests(seed_dir):
    seed = load_seed_sets(seed_dir)
    answers = [
        answer("def f(x):\n    return x + 1\n\nassert f(1) == 2"),
        answer("def f(x):\n    return x + 1\n\nassert f(1) == 3"),
        answer("def f(x):\n    while True:\n        pass\n\nassert f(1) == 2"),
        answer("import os\n\ndef f(x):\n    return os.getcwd()\n\nassert f(1) == 2"),
        answer("def f(x:\n    return x"),
        "I'm sorry, I cannot do that.",
        b"\xff\xfe not text".decode("utf-8", "surrogateescape"),
        "",
    ]
    params = synth_params(
        cycles=1,
        items_per_cycle=8,
        s3_requests=0,
        s4_requests=0,
        s5_requests=0,
    )
    with SandboxVerifier(workers=2, timeout=2.0, progress=False) as verifier:
        result = run_synth(seed, params, Canned(answers), 0, verifier=verifier, progress=False)
    metrics = result.metrics["s1_star"]
    assert metrics["accepted"] == 1 and metrics["rejected"] == 7
    assert metrics["rejected_by_reason"] == {
        "tests_failed": 3,
        "syntax_error": 1,
        "refusal": 1,
        "non_utf8": 1,
        "empty": 1,
    }
    details = sorted(r["detail"] for r in result.rejected if r["reason"] == "tests_failed")
    assert details[0].startswith("failed") and details[1].startswith("policy")
    assert details[2].startswith("timeout")
    json.dumps(result.rejected, ensure_ascii=False).encode("utf-8")  # writable as UTF-8
    assert result.metrics["total"]["rejected"] == 7


def test_s2_titles_without_code_get_question_and_code_from_the_model(seed_dir):
    seed = load_seed_sets(seed_dir)
    seed.s2 = [
        {"id": r["id"], "title": r["title"], "keywords": r["keywords"], "source": "seed_s2"}
        for r in seed.s2[:10]
    ]
    params = synth_params(cycles=0, s3_requests=4, s4_requests=4, s5_requests=4)
    result = run_synth(seed, params, TinyWorldBackend(), 0, progress=False)
    s2 = result.sets["s2"]
    assert 0 < len(s2) <= 10 and result.metrics["s2"]["requests"] == 10
    assert all(r["question"] and r["code"] and r["title"] and r["source"] == "seed_s2" for r in s2)
    assert result.metrics["s3"]["requests"] == 4


def write_params(tmp_path, **synth):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"seed": 0, "k": 2, "synth": {**SMALL, **synth}}))
    return path


def test_stage_writes_sets_rejections_and_metrics(seed_dir, tmp_path):
    out, metrics = tmp_path / "synth", tmp_path / "metrics" / "synth.json"
    params = write_params(tmp_path, s5_requests=40)
    args = [
        "--params",
        str(params),
        "--seed-dir",
        str(seed_dir),
        "--out",
        str(out),
        "--metrics",
        str(metrics),
        "--no-progress",
    ]
    result = CliRunner().invoke(stage("synth"), args)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "rejected.jsonl",
        "s1_star.jsonl",
        "s2.jsonl",
        "s3.jsonl",
        "s4.jsonl",
        "s5.jsonl",
    ]
    for name in ("s1_star", "s3", "s4", "s5"):
        for record in read(out / f"{name}.jsonl"):
            assert set(record) >= {"id", "question", "code", "keywords", "source", "tests"}
    report = json.loads(metrics.read_text())
    for name in ("s1_star", "s3", "s4", "s5"):
        entry = report[name]
        assert entry["accepted"] + entry["rejected"] == entry["requests"]
        assert sum(entry["rejected_by_reason"].values()) == entry["rejected"]
    assert report["s1_star"]["requests"] == 16 and report["s3"]["requests"] == 16
    rejected = read(out / "rejected.jsonl")
    assert len(rejected) == report["total"]["rejected"] > 0
    assert all({"strategy", "reason", "raw"} <= set(r) for r in rejected)


def test_stage_with_openai_backend_reruns_from_the_cache(seed_dir, tmp_path):
    with StubServer(responder=default_answer) as server:
        params = write_params(
            tmp_path,
            backend="openai",
            openai_base_url=server.base_url,
            openai_model="stub",
            cache_dir=str(tmp_path / "cache"),
            verify=False,
        )
        args = [
            "--params",
            str(params),
            "--seed-dir",
            str(seed_dir),
            "--out",
            str(tmp_path / "synth"),
            "--metrics",
            str(tmp_path / "m.json"),
            "--no-progress",
        ]
        first = CliRunner().invoke(stage("synth"), args)
        assert first.exit_code == 0, first.output
        hits = server.hits
        assert hits == 8 + 8 + 16 + 8 + 16
        s3 = (tmp_path / "synth" / "s3.jsonl").read_text()
        second = CliRunner().invoke(stage("synth"), args)
        assert second.exit_code == 0, second.output
        assert server.hits == hits
        assert (tmp_path / "synth" / "s3.jsonl").read_text() == s3
        assert json.loads((tmp_path / "m.json").read_text())["backend"]["cache_hits"] == hits


def test_unreachable_endpoint_is_one_line_and_no_outs(seed_dir, tmp_path):
    params = write_params(
        tmp_path,
        backend="openai",
        openai_base_url="http://127.0.0.1:9/v1",
        openai_max_retries=0,
        cache_dir=str(tmp_path / "cache"),
    )
    out = tmp_path / "synth"
    result = CliRunner().invoke(
        stage("synth"),
        ["--params", str(params), "--seed-dir", str(seed_dir), "--out", str(out), "--no-progress"],
    )
    assert result.exit_code == 2
    (line,) = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert "cannot reach the endpoint" in line and "synth.openai_base_url" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("synth", "missing", "message"),
    [
        ({"n_min": 20}, None, "synth.n_min (20) must not exceed synth.n_max (15)"),
        ({}, "keywords.json", "keywords.json: file not found"),
    ],
)
def test_bad_input_gives_one_line(seed_dir, tmp_path, synth, missing, message):
    seeds = tmp_path / "seed"
    seeds.mkdir()
    for path in seed_dir.iterdir():
        if path.name != missing:
            (seeds / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "synth"
    result = CliRunner().invoke(
        stage("synth"),
        [
            "--params",
            str(write_params(tmp_path, **synth)),
            "--seed-dir",
            str(seeds),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert message in result.output and not out.exists()


def test_tinyworld_self_instruct_stays_in_an_example_family_and_level(seed_dir):
    from codealign.synth import strategies
    from codealign.synth.parse import parse_response
    from codealign.tinyworld.templates import TEMPLATE_BY_NAME

    seed = load_seed_sets(seed_dir)
    by_id = {r["id"]: r for r in seed.s1}
    backend = TinyWorldBackend(seed.known_prompts)
    requests = strategies.self_instruct_requests(seed.s1, synth_params(few_shot=1), 0, cycle=1)
    styles = {(t.family, t.level, tuple(t.keywords)) for t in TEMPLATE_BY_NAME.values()}
    for request in requests:
        parsed = parse_response(backend.answer(request))
        (example,) = request.meta["examples"]
        families = {f for f, lvl, kw in styles if set(kw) == set(by_id[example["id"]]["keywords"])}
        answer = {(f, lvl) for f, lvl, kw in styles if set(kw) == set(parsed.keywords)}
        assert any(f in families and lvl == example["difficulty"] for f, lvl in answer)


def test_stage_cut_short_by_the_budget_resumes_without_paying_twice(seed_dir, tmp_path):
    with StubServer() as server:
        common = {
            "backend": "openai",
            "openai_base_url": server.base_url,
            "openai_model": "stub",
            "cache_dir": str(tmp_path / "cache"),
            "verify": False,
            "cycles": 1,  # every request independent of earlier answers
        }
        out, metrics = tmp_path / "synth", tmp_path / "m.json"

        def run(**extra):
            args = [
                "--params",
                str(write_params(tmp_path, **common, **extra)),
                "--seed-dir",
                str(seed_dir),
                "--out",
                str(out),
                "--metrics",
                str(metrics),
                "--no-progress",
            ]
            result = CliRunner().invoke(stage("synth"), args)
            assert result.exit_code == 0, result.output
            return json.loads(metrics.read_text())

        first = run(openai_request_budget=20)
        assert server.hits == 20
        assert first["total"]["rejected_by_reason"] == {"budget_exhausted": 48 - 20}
        second = run()
        assert server.hits == 48 and second["backend"]["cache_hits"] == 20
        assert second["total"] == {
            "requests": 48,
            "accepted": 48,
            "rejected": 0,
            "rejected_by_reason": {},
        }
