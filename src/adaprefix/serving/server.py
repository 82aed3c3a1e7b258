"""``adaprefix serve``: many adapters on one frozen backbone over HTTP (FastAPI on uvicorn), with dynamic batching.

Usage::

    adaprefix serve --adapter cb=runs/cb-apt --adapter rte=runs/rte-pt2/adapter --port 8000
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
         -d '{"adapter": "cb", "records": [{"premise": "It rained.", "hypothesis": "It was wet."}]}'
    # -> {"predictions": [{"idx": null, "label": "entailment", "probs": {...}}]}

From Python (tests, embedding in another app)::

    service = load_service({"cb": "runs/cb-apt"}, model=None, max_batch=64, max_wait_ms=5)
    app = create_app(service, max_records=256)

Endpoints: ``POST /predict`` ``{"adapter": NAME, "records": [...]}`` -> ``{"predictions": [...]}`` with the records
and prediction objects of ``adaprefix predict``; ``GET /adapters``; ``GET /health``.

How a request runs: it is parsed with the task readers (``tasks.superglue.PARSERS`` / NER tokens) and labelled by
``serving.predict.predict_records``, exactly as ``adaprefix predict`` does, except that the model it is given is a
proxy: each forward it asks for becomes a job on the :class:`DynamicBatcher`. The batcher thread gathers jobs from
all concurrent requests, for any mix of adapters, for at most ``max_wait_ms`` or until ``max_batch`` rows, runs them
as one mixed batch through :class:`MultiAdapterModel`, and hands each job its rows back.

Errors: unknown adapter 404; malformed body or a record with missing or mistyped fields 422 (the message names the
field); more than ``max_records`` records or a body over ``max_body_bytes`` 413. Adapters come only from the
command line. The server binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from fastapi import FastAPI, HTTPException
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from ..adapter_io import read_adapter_config
from ..backbones.packaged import resolve_model
from ..tasks import DataError, Task, TokenExample, get_task
from ..tasks.superglue import PARSERS, Row
from ..training import load_backbone
from .multi import MultiAdapterModel
from ..tasks.ner import parse_token_record
from .predict import predict_records, resolve_adapter_dir

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


def parse_adapter_specs(specs: list[str]) -> dict[str, str]:
    """``["cb=runs/cb", "rte=runs/rte"]`` -> ``{"cb": "runs/cb", "rte": "runs/rte"}``; ValueError on a bad spec.

    >>> parse_adapter_specs(["cb=runs/cb-apt"])
    {'cb': 'runs/cb-apt'}
    """
    out: dict[str, str] = {}
    if not specs:
        raise ValueError("give at least one --adapter NAME=DIR")
    for spec in specs:
        name, sep, directory = spec.partition("=")
        name, directory = name.strip(), directory.strip()
        if not sep or not name or not directory:
            raise ValueError(f"--adapter {spec!r}: expected NAME=DIR, e.g. cb=runs/cb-apt")
        if not NAME_PATTERN.match(name):
            raise ValueError(
                f"--adapter {spec!r}: name {name!r} may hold only letters, digits, '_', '.', '-' (not first)"
            )
        if name in out:
            raise ValueError(f"--adapter {spec!r}: name {name!r} is given twice")
        out[name] = directory
    return out


# ---------------------------------------------------------------------------------------------- batching


@dataclass
class _Job:
    """One forward a request asks for: rows of one adapter, (b x n) or (b x C x n) for multiple choice."""

    adapter: str
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    future: Future = field(default_factory=Future)

    @property
    def rows(self) -> int:
        return self.input_ids.shape[0] * (self.input_ids.shape[1] if self.input_ids.dim() == 3 else 1)


class DynamicBatcher:
    """Gathers jobs from concurrent requests into mixed batches on one thread that owns the model.

    A batch closes when it holds ``max_batch`` rows or ``max_wait_ms`` after its first job arrived, whichever
    comes first; a job that would overflow a batch starts the next one (a job larger than ``max_batch`` runs on
    its own). A gathered batch runs as one mixed forward unless its jobs' lengths differ so much that padding
    them to the longest would cost more than ``pad_slack`` times their own padded size: then it runs as a few
    forwards of similar length (each still mixing adapters). ``pad_slack=None`` always runs one forward.
    ``batches`` / ``forwards`` / ``rows`` / ``jobs`` count what ran, for /health and tests.

    Usage::

        batcher = DynamicBatcher(multi, pad_token_id=0, max_batch=64, max_wait_ms=5).start()
        logits = batcher.submit("cb", input_ids, attention_mask, token_type_ids)   # blocks; thread-safe
    """

    def __init__(self, multi: MultiAdapterModel, pad_token_id: int, max_batch: int = 64, max_wait_ms: float = 5.0,
                 pad_slack: float | None = 1.3) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.multi, self.pad = multi, pad_token_id
        if pad_slack is not None and pad_slack < 1:
            raise ValueError(f"pad_slack must be >= 1 or None, got {pad_slack}")
        self.max_batch, self.max_wait, self.pad_slack = max_batch, max_wait_ms / 1000.0, pad_slack
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = self.forwards = self.rows = self.jobs = 0

    def start(self) -> "DynamicBatcher":
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="adaprefix-batcher", daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)
        self._thread = None

    def submit(self, adapter: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None) -> torch.Tensor:
        """Logits for these rows through ``adapter``, shaped as ``TaskModel`` returns them. Blocks until done."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        job = _Job(adapter, input_ids, attention_mask, token_type_ids)
        self.start()
        self._queue.put(job)
        return job.future.result()

    def _loop(self) -> None:
        carry: _Job | None = None
        while True:
            first = carry if carry is not None else self._queue.get()
            carry = None
            if first is None:
                return
            jobs, rows = [first], first.rows
            deadline = time.monotonic() + self.max_wait
            stop = False
            while rows < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    job = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                if rows + job.rows > self.max_batch:
                    carry = job  # keeps the bound; it opens the next batch at once
                    break
                jobs.append(job)
                rows += job.rows
            self._run(jobs)
            if stop:
                return

    def _run(self, jobs: list[_Job]) -> None:
        """Run one gathered batch; every job gets its logits or the error, and the thread lives on."""
        self.batches += 1
        try:
            groups = self.split_by_length(jobs)
        except Exception:  # noqa: BLE001 - never leave a request waiting: fall back to one forward
            groups = [jobs]
        for group in groups:
            try:
                outputs = self.forward(group)
            except Exception as err:  # noqa: BLE001 - every waiting request must hear about it
                for job in group:
                    job.future.set_exception(err)
                continue
            for job, out in zip(group, outputs):
                job.future.set_result(out)

    def split_by_length(self, jobs: list[_Job]) -> list[list[_Job]]:
        """Jobs in groups of similar length: sorted by length, a group grows while padding every row to its
        longest costs at most ``pad_slack`` times the rows' own sizes (CPU time grows with padded tokens)."""
        if self.pad_slack is None or len(jobs) == 1:
            return [jobs]
        groups: list[list[_Job]] = []
        own = rows = 0
        for job in sorted(jobs, key=lambda j: j.input_ids.shape[-1]):
            width = job.input_ids.shape[-1]
            if groups and (rows + job.rows) * width <= self.pad_slack * (own + job.rows * width):
                groups[-1].append(job)
            else:
                groups.append([job])
                own = rows = 0
            own += job.rows * width
            rows += job.rows
        return groups

    def forward(self, jobs: list[_Job]) -> list[torch.Tensor]:
        """One mixed batch for ``jobs``; per job its logits as ``TaskModel`` would return them."""
        width = max(j.input_ids.shape[-1] for j in jobs)

        def flat(t: torch.Tensor, value: int) -> torch.Tensor:
            return F.pad(t.reshape(-1, t.shape[-1]), (0, width - t.shape[-1]), value=value)

        device = self.multi.base_device
        ids = torch.cat([flat(j.input_ids, self.pad) for j in jobs]).to(device)
        mask = torch.cat([flat(j.attention_mask, 0) for j in jobs]).to(device)
        types = torch.cat([flat(j.token_type_ids, 0) for j in jobs]).to(device)
        names = [j.adapter for j in jobs for _ in range(j.rows)]
        with torch.inference_mode():
            per_row = [r.float().cpu() for r in self.multi(ids, mask, types, adapters=names)]
        self.forwards += 1
        self.rows += len(names)
        self.jobs += len(jobs)
        out, start = [], 0
        for j in jobs:
            rows = per_row[start : start + j.rows]
            start += j.rows
            if j.input_ids.dim() == 3:  # multiple choice: one score per choice row
                out.append(torch.cat(rows).view(j.input_ids.shape[0], j.input_ids.shape[1]))
            else:
                stacked = torch.stack(rows)
                # Token logits come over the batch's width; give the job its own width back.
                out.append(stacked[:, : j.input_ids.shape[-1]] if stacked.dim() == 3 else stacked)
        return out


class _BatchedModel(nn.Module):
    """What ``predict_records`` sees as the model: each forward goes through the batcher under one adapter.

    A parameterless module, so that the prediction loop's module calls (``eval``, ``train``, ``parameters``) work;
    it reports the CPU as its device and the batcher moves rows to the shared model's device and back.
    """

    def __init__(self, batcher: DynamicBatcher, adapter: str) -> None:
        super().__init__()
        self.batcher, self.adapter = batcher, adapter
        self.eval()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None) -> SimpleNamespace:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return SimpleNamespace(logits=self.batcher.submit(self.adapter, input_ids, attention_mask, token_type_ids))


class _LockedTokenizer:
    """A fast tokenizer shared by request threads: calls are serialised, since setting truncation on the Rust
    tokenizer from two threads at once fails ("Already borrowed")."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer, self._lock = tokenizer, threading.Lock()

    def __call__(self, *args, **kwargs):
        with self._lock:
            return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._tokenizer, name)


# ---------------------------------------------------------------------------------------------- service


@dataclass
class ServedAdapter:
    name: str
    task: Task
    max_length: int


@dataclass
class Service:
    """Everything the app needs: the shared model, tokenizer, each adapter's task and max length, the batcher."""

    multi: MultiAdapterModel
    tokenizer: Any
    adapters: dict[str, ServedAdapter]
    batcher: DynamicBatcher
    requests: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, error: bool = False) -> None:
        with self._lock:
            if error:
                self.errors += 1
            else:
                self.requests += 1


def load_service(specs: dict[str, str], model: str | None = None, max_batch: int = 64,
                 max_wait_ms: float = 5.0, pad_slack: float | None = 1.3) -> Service:
    """Load the base encoder once and every adapter in ``specs`` (name -> adapter or run directory) onto it.

    The base is ``model`` or, without it, the one the first adapter records; every adapter is checked against it.
    Each adapter must record its task (``adaprefix train`` does) and have a head.
    """
    metas: dict[str, tuple[Path, dict]] = {}
    for name, path in specs.items():
        directory = resolve_adapter_dir(path)
        meta = read_adapter_config(directory)
        if not meta.get("extra", {}).get("task"):
            raise ValueError(f"--adapter {name}={path}: the adapter records no task, so its records cannot be read")
        if meta.get("head") is None:
            raise ValueError(f"--adapter {name}={path}: the adapter has no task head, so it cannot predict")
        metas[name] = (directory, meta)
    if not metas:
        raise ValueError("give at least one --adapter NAME=DIR")
    first = next(iter(metas.values()))[1]
    tokenizer, encoder = load_backbone(resolve_model(model or first["base_model"]["name_or_path"]))
    multi = MultiAdapterModel(encoder)
    served: dict[str, ServedAdapter] = {}
    for name, (directory, meta) in metas.items():
        info = multi.add(name, directory)
        if "custom_task" in meta["extra"]:
            raise ValueError(f"--adapter {name}: serving adapters trained on your own data is not supported yet; "
                             "use `adaprefix predict`")
        task = get_task(meta["extra"]["task"])
        if len(info.label_names) != len(task.labels) and task.head != "multiple_choice":
            raise ValueError(f"--adapter {name}: {len(info.label_names)} labels, but task {task.name} has {len(task.labels)}")
        served[name] = ServedAdapter(name, task, meta["extra"].get("max_length") or task.default_max_length)
    batcher = DynamicBatcher(multi, tokenizer.pad_token_id or 0, max_batch, max_wait_ms, pad_slack)
    return Service(multi, _LockedTokenizer(tokenizer), served, batcher)


def parse_records(task: Task, records: list[dict]) -> list:
    """Request records -> task records, as ``adaprefix predict`` reads lines; DataError names record and field."""
    out = []
    for i, obj in enumerate(records):
        row = Row(obj, f"records[{i}]", None)
        if task.head == "token_classification":
            # Without an idx, predict numbers a record by its line; here by its 1-based place in the request.
            out.append(parse_token_record(obj, f"records[{i}]", None, default_idx=i + 1))
        else:
            out.extend(PARSERS[task.name](row, False))
    return out


# ---------------------------------------------------------------------------------------------- HTTP


class PredictRequest(BaseModel):
    """``{"adapter": NAME, "records": [...]}``: records as the lines of an ``adaprefix predict`` input file."""

    model_config = ConfigDict(extra="forbid")
    adapter: str = Field(min_length=1, max_length=200)
    records: list[dict[str, Any]] = Field(min_length=1)


class PredictResponse(BaseModel):
    predictions: list[dict[str, Any]]


class _BodyLimit:
    """ASGI middleware: answer 413 to a request body over ``limit`` bytes before anything parses it."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._reject(send)
            return
        # Read the body ourselves (bounded), then replay it: chunked bodies without a length are bounded too.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._reject(send)
                return
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send) -> None:
        payload = json.dumps({"detail": f"request body too large (limit {self.limit} bytes)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def create_app(service: Service, max_records: int = 256, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The FastAPI app over ``service``; the batcher thread runs for the app's lifetime."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        import anyio.to_thread

        # Each in-flight request holds a worker thread while its rows wait in the batcher: allow enough of them
        # to fill a batch.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = max(limiter.total_tokens, 2 * service.batcher.max_batch)
        service.batcher.start()
        yield
        service.batcher.stop()

    app = FastAPI(title="adaprefix", summary="APT / P-tuning v2 adapters on one frozen encoder", lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        service.count(error=True)  # count, then answer as FastAPI does (422, the field's location and message)
        return await request_validation_exception_handler(request, exc)

    def fail(status: int, message: str) -> HTTPException:
        service.count(error=True)
        return HTTPException(status_code=status, detail=message)

    @app.post("/predict", response_model=PredictResponse)
    def predict(request: PredictRequest) -> dict:  # sync: runs in a worker thread and waits on the batcher
        service.count()
        served = service.adapters.get(request.adapter)
        if served is None:
            raise fail(404, f"unknown adapter {request.adapter!r}; loaded: {sorted(service.adapters)}")
        if len(request.records) > max_records:
            raise fail(413, f"{len(request.records)} records in one request; at most {max_records}")
        try:
            examples = parse_records(served.task, request.records)
        except DataError as err:
            raise fail(422, f"{err} (task {served.task.name})") from None
        model = _BatchedModel(service.batcher, served.name)
        predictions = predict_records(served.task, service.tokenizer, model, examples, served.max_length,
                                      service.batcher.max_batch)
        return {"predictions": predictions}

    @app.get("/adapters")
    def adapters() -> dict:
        out = []
        for name, served in service.adapters.items():
            entry = service.multi.info(name).as_dict()
            entry.update(task=served.task.name, max_length=served.max_length)
            out.append(entry)
        return {"adapters": out}

    @app.get("/health")
    def health() -> dict:
        b = service.batcher
        return {"status": "ok", "adapters": len(service.adapters), "requests": service.requests,
                "errors": service.errors, "batches": b.batches, "forwards": b.forwards, "rows": b.rows, "jobs": b.jobs,
                "max_batch": b.max_batch, "max_wait_ms": b.max_wait * 1000.0}

    if max_body_bytes:
        app.add_middleware(_BodyLimit, limit=max_body_bytes)
    return app


def serve(specs: dict[str, str], model: str | None = None, host: str = "127.0.0.1", port: int = 8000,
          max_batch: int = 64, max_wait_ms: float = 5.0, max_records: int = 256,
          max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Load the adapters and serve them with uvicorn until interrupted."""
    import uvicorn

    if max_records < 1:
        raise ValueError(f"--max-records must be >= 1, got {max_records}")
    service = load_service(specs, model, max_batch=max_batch, max_wait_ms=max_wait_ms)
    uvicorn.run(create_app(service, max_records, max_body_bytes), host=host, port=port, log_level="info")
