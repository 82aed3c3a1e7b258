"""adaprefix serve: HTTP answers equal `adaprefix predict` with each adapter alone; batching; errors."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from transformers import AutoModel, BertConfig, BertTokenizerFast

from adaprefix import PrefixConfig, TaskModel, attach, load_adapter, save_adapter
from adaprefix.cli import main as cli_main
from adaprefix.serving.predict import predict_records, read_records
from adaprefix.serving.server import create_app, load_service, parse_adapter_specs
from adaprefix.tasks import get_task
from conftest import TINY, randomize_adapter

torch.set_num_threads(1)

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz",
         *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"),
         "the", "it", "was", "a", ".", ",", "rain", "##ed", "wet", "because", "so", "man", "dog", "ran", "jim", "paris"]
# name -> (task, prefix config): mixed methods, lengths with zeros, heads (3 and 2 classes, choice, tokens).
SPECS = {
    "cb": ("cb", PrefixConfig(method="apt", prefix_len=[2, 0, 3])),
    "rte": ("rte", PrefixConfig(method="prefix", prefix_len=4)),
    "copa": ("copa", PrefixConfig(method="apt", prefix_len=2)),
    "ner": ("conll03", PrefixConfig(method="prefix", prefix_len=[1, 2, 0])),
}
RECORDS = {
    "cb": [{"idx": 0, "premise": "the dog was wet .", "hypothesis": "it rained"},
           {"idx": 1, "premise": "jim ran", "hypothesis": "the man ran to paris ."}],
    "rte": [{"idx": 7, "premise": "it rained so the dog was wet", "hypothesis": "the dog was wet"}],
    "copa": [{"idx": 3, "premise": "the man was wet", "question": "cause", "choice1": "it rained", "choice2": "jim ran"}],
    "ner": [{"idx": 5, "tokens": ["jim", "ran", "to", "paris", "."]}, {"tokens": ["the", "dog"]}],
}


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A tiny random BERT with a real (tiny) WordPiece tokenizer, saved as a model folder."""
    path = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    AutoModel.from_config(BertConfig(**TINY)).save_pretrained(path)
    BertTokenizerFast(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def adapter_dirs(base_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    out = {}
    for seed, (name, (task_name, config)) in enumerate(SPECS.items(), 1):
        task = get_task(task_name)
        model = TaskModel(attach(AutoModel.from_pretrained(base_dir), config), task.head, task.label_names).eval()
        randomize_adapter(model, seed=seed)
        out[name] = save_adapter(model, root / name, extra={"task": task.name, "max_length": 24})
    return out


@pytest.fixture(scope="module")
def expected(base_dir, adapter_dirs, tmp_path_factory):
    """What `adaprefix predict` writes for each adapter alone: the independent computation."""
    root = tmp_path_factory.mktemp("records")
    tokenizer = BertTokenizerFast.from_pretrained(base_dir)
    out = {}
    for name, (task_name, _) in SPECS.items():
        task = get_task(task_name)
        path = root / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[name]))
        examples = read_records(task, path)
        model = load_adapter(adapter_dirs[name], AutoModel.from_pretrained(base_dir)).eval()
        out[name] = predict_records(task, tokenizer, model, examples, 24, 8)
    return out


def assert_same_predictions(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k != "probs"} == {k: v for k, v in w.items() if k != "probs"}
        if "probs" in w:
            gp, wp = g["probs"], w["probs"]
            if isinstance(wp, dict):
                assert gp.keys() == wp.keys()
                gp, wp = list(gp.values()), list(wp.values())
            assert gp == pytest.approx(wp, abs=2e-6)


@pytest.fixture(scope="module")
def client(adapter_dirs):
    service = load_service({k: str(v) for k, v in adapter_dirs.items()}, max_batch=16, max_wait_ms=2)
    with TestClient(create_app(service, max_records=4, max_body_bytes=4000)) as c:
        c.service = service
        yield c


def test_predict_equals_each_adapter_alone(client, expected):
    for name in SPECS:
        response = client.post("/predict", json={"adapter": name, "records": RECORDS[name]})
        assert response.status_code == 200, response.text
        assert_same_predictions(response.json()["predictions"], expected[name])


def test_adapters_and_health(client):
    listing = {a["name"]: a for a in client.get("/adapters").json()["adapters"]}
    assert sorted(listing) == sorted(SPECS)
    cb = listing["cb"]
    assert (cb["task"], cb["method"], cb["labels"], cb["prefix_lengths"]) == (
        "cb", "apt", ["entailment", "contradiction", "neutral"], [2, 0, 3])
    # tables 2*5*32, token gates 5*32+5, layer gates 2, head 3*32+3
    assert cb["parameters"] == 2 * 5 * 32 + 5 * 32 + 5 + 2 + 3 * 32 + 3
    assert listing["ner"]["method"] == "prefix" and listing["ner"]["task"] == "conll03"
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["adapters"] == 4


@pytest.mark.parametrize(
    "body, status, says",
    [
        ({"adapter": "nope", "records": RECORDS["cb"]}, 404, "unknown adapter 'nope'"),
        ({"adapter": "cb", "records": [{"premise": "it rained"}]}, 422, "missing field 'hypothesis'"),
        ({"adapter": "cb", "records": [{"premise": 5, "hypothesis": "x"}]}, 422, "field 'premise' should be a string"),
        ({"adapter": "copa", "records": [{"premise": "a", "question": "why", "choice1": "b", "choice2": "c"}]},
         422, "field 'question'"),
        ({"adapter": "ner", "records": [{"tokens": "jim ran"}]}, 422, "field 'tokens' should be a list"),
        ({"adapter": "ner", "records": [{"tokens": ["jim", 3]}]}, 422, "tokens[1] should be a string"),
        ({"adapter": "cb", "records": ["not an object"]}, 422, "records"),
        ({"adapter": "cb", "records": []}, 422, "records"),
        ({"records": RECORDS["cb"]}, 422, "adapter"),
        ({"adapter": "cb", "records": RECORDS["cb"], "path": "/etc"}, 422, "path"),
        ({"adapter": "cb", "records": RECORDS["cb"] * 3}, 413, "at most 4"),
    ],
    ids=["unknown-adapter", "missing-field", "mistyped-field", "bad-copa-question", "tokens-not-list",
         "tokens-not-strings", "record-not-object", "no-records", "no-adapter", "extra-key", "too-many-records"],
)
def test_errors_then_keeps_serving(client, expected, body, status, says):
    response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    assert says in json.dumps(response.json()["detail"])
    ok = client.post("/predict", json={"adapter": "rte", "records": RECORDS["rte"]})
    assert ok.status_code == 200
    assert_same_predictions(ok.json()["predictions"], expected["rte"])


def test_malformed_json_and_oversized_body(client):
    response = client.post("/predict", content=b'{"adapter": "cb", "records": [', headers={"content-type": "application/json"})
    assert response.status_code == 422 and "json" in response.text.lower()
    big = {"adapter": "cb", "records": [{"premise": "a " * 3000, "hypothesis": "b"}]}
    response = client.post("/predict", json=big)
    assert response.status_code == 413 and "too large" in response.json()["detail"]
    # a body with no content-length (chunked) is bounded too
    response = client.post("/predict", content=iter([json.dumps(big).encode()]), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert client.get("/health").status_code == 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_uvicorn_gathers_concurrent_mixed_requests_into_one_batch(adapter_dirs, expected):
    """A real server on localhost: concurrent requests for four adapters run as ONE forward of the shared model.

    max_batch equals the rows of all requests together and the wait is long, so the batch closes exactly when
    every request has arrived; counting calls to the model's forward shows they were gathered.
    """
    import uvicorn

    requests = [("cb", RECORDS["cb"]), ("rte", RECORDS["rte"]), ("copa", RECORDS["copa"]), ("ner", RECORDS["ner"])]
    rows = 2 + 1 + 2 + 2  # copa: two choice rows per record
    service = load_service({k: str(v) for k, v in adapter_dirs.items()}, max_batch=rows, max_wait_ms=20000,
                           pad_slack=None)
    calls: list[list[str]] = []
    forward = service.multi.forward

    def counting_forward(*args, **kwargs):
        calls.append(list(kwargs["adapters"]))
        return forward(*args, **kwargs)

    service.multi.forward = counting_forward
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"

        def post(item):
            name, records = item
            return name, httpx.post(f"{url}/predict", json={"adapter": name, "records": records}, timeout=30)

        started = time.monotonic()
        with ThreadPoolExecutor(len(requests)) as pool:
            answers = list(pool.map(post, requests))
        assert time.monotonic() - started < 15  # closed by size, not by the 20 s wait
        for name, response in answers:
            assert response.status_code == 200, response.text
            assert_same_predictions(response.json()["predictions"], expected[name])
        assert len(calls) == 1 and sorted(set(calls[0])) == ["cb", "copa", "ner", "rte"] and len(calls[0]) == rows
        health = httpx.get(f"{url}/health").json()
        assert (health["batches"], health["forwards"], health["rows"], health["jobs"]) == (1, 1, rows, 4)
        assert httpx.post(f"{url}/predict", json={"adapter": "zzz", "records": RECORDS["cb"]}).status_code == 404
    finally:
        server.should_exit = True
        thread.join(10)


def test_batcher_splits_at_max_batch_and_reports_errors(adapter_dirs):
    service = load_service({"cb": str(adapter_dirs["cb"])}, max_batch=2, max_wait_ms=200)
    calls: list[int] = []
    forward = service.multi.forward
    service.multi.forward = lambda *a, **k: (calls.append(len(k["adapters"])), forward(*a, **k))[1]
    ids = torch.tensor([[2, 40, 41, 3]])
    mask = torch.ones_like(ids)
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda _: service.batcher.submit("cb", ids, mask, None), range(3)))
    assert all(o.shape == (1, 3) for o in outs) and max(calls) <= 2 and sum(calls) == 3
    with pytest.raises(KeyError, match="unknown adapter"):
        service.batcher.submit("missing", ids, mask, None)
    assert service.batcher.submit("cb", ids, mask, None).shape == (1, 3)  # still serving
    service.batcher.stop()


def test_batcher_runs_very_different_lengths_as_separate_mixed_forwards(adapter_dirs):
    """Short and long jobs gathered together run as two forwards by length, each mixing adapters; the results
    equal the adapters alone."""
    service = load_service({k: str(adapter_dirs[k]) for k in ("cb", "rte")}, max_batch=4, max_wait_ms=20000)
    batcher = service.batcher
    calls: list[tuple[list[str], int]] = []
    forward = service.multi.forward
    service.multi.forward = lambda *a, **k: (calls.append((k["adapters"], a[0].shape[1])), forward(*a, **k))[1]
    g = torch.Generator().manual_seed(0)
    short, long = torch.randint(5, 60, (1, 4), generator=g), torch.randint(5, 60, (1, 20), generator=g)
    jobs = [("cb", short), ("rte", long), ("rte", short), ("cb", long)]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda j: batcher.submit(j[0], j[1], torch.ones_like(j[1]), None), jobs))
    assert (batcher.batches, batcher.forwards) == (1, 2)
    assert sorted((sorted(names), width) for names, width in calls) == [(["cb", "rte"], 4), (["cb", "rte"], 20)]
    for (name, ids), out in zip(jobs, outs):
        alone = service.multi.model(name)(ids, torch.ones_like(ids)).logits
        torch.testing.assert_close(out, alone, atol=1e-5, rtol=1e-5)
    batcher.stop()


def test_parse_adapter_specs():
    assert parse_adapter_specs(["cb=runs/cb", "r.t-e_2=/a=b"]) == {"cb": "runs/cb", "r.t-e_2": "/a=b"}
    for bad, says in [("cb", "NAME=DIR"), ("=runs/x", "NAME=DIR"), ("cb=", "NAME=DIR"), ("c b=x", "letters"),
                      ("../x=y", "letters")]:
        with pytest.raises(ValueError, match=says):
            parse_adapter_specs([bad])
    with pytest.raises(ValueError, match="given twice"):
        parse_adapter_specs(["cb=a", "cb=b"])


def test_cli_serve_rejects_bad_specs_and_adapters_without_task(tmp_path, base_dir, capsys):
    assert cli_main(["serve", "--adapter", "nodir"]) == 2
    assert "expected NAME=DIR" in capsys.readouterr().err
    model = TaskModel(attach(AutoModel.from_pretrained(base_dir), PrefixConfig(prefix_len=2)), "classification", ["a", "b"])
    save_adapter(model, tmp_path / "notask")
    assert cli_main(["serve", "--adapter", f"x={tmp_path / 'notask'}"]) == 2
    assert "records no task" in capsys.readouterr().err


def test_serve_binds_localhost_by_default(monkeypatch, adapter_dirs, expected):
    """serve() loads the adapters named on the command line and hands uvicorn an app bound to 127.0.0.1."""
    import uvicorn

    from adaprefix.serving.server import serve

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(app=app, **kwargs))
    serve({"rte": str(adapter_dirs["rte"])}, max_records=1)
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8000)
    with TestClient(seen["app"]) as c:
        ok = c.post("/predict", json={"adapter": "rte", "records": RECORDS["rte"]})
        assert ok.status_code == 200
        assert_same_predictions(ok.json()["predictions"], expected["rte"])
        assert c.post("/predict", json={"adapter": "rte", "records": RECORDS["rte"] * 2}).status_code == 413
        assert c.post("/predict", json={"adapter": "cb", "records": RECORDS["cb"]}).status_code == 404
