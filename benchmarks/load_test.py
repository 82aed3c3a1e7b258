"""Bounded load test of ``adaprefix serve`` on localhost: requests served, latency percentiles, errors.

By default it builds random adapters on the packaged MiniLM for four tasks (CB APT, RTE P-tuning v2, COPA APT,
CoNLL03 P-tuning v2; random weights: speed only), starts ``adaprefix serve`` on a free localhost port with them,
and drives it with a bounded async httpx client: for each concurrency level, ``--requests`` requests, each for a
random adapter with 1 to ``--max-records`` records drawn from the official val/dev files. Levels run one after
the other against the same server; /health's batch counters give the mean rows per model forward.

    .venv/bin/python benchmarks/load_test.py [--adapters 4] [--levels 1,4,16] [--requests 120] \\
        [--max-records 4] [--server-threads 1] [--json results/serving/load_test.json]
    .venv/bin/python benchmarks/load_test.py --url http://127.0.0.1:8000 ...   # an already running server
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TASKS = [("cb", "apt"), ("rte", "prefix"), ("copa", "apt"), ("conll03", "prefix")]


def make_adapters(root: Path, count: int, prefix_len: int = 16) -> dict[str, Path]:
    """``count`` random adapters on the packaged MiniLM, cycling over TASKS; name -> directory."""
    import torch
    from transformers import AutoModel

    from adaprefix import PrefixConfig, TaskModel, attach, save_adapter
    from adaprefix.backbones.packaged import packaged_model_path
    from adaprefix.tasks import get_task

    encoder = AutoModel.from_pretrained(str(packaged_model_path("minilm"))).eval()
    out = {}
    for i in range(count):
        task_name, method = TASKS[i % len(TASKS)]
        task = get_task(task_name)
        torch.manual_seed(i)
        model = TaskModel(attach(encoder, PrefixConfig(method=method, prefix_len=prefix_len)), task.head, task.label_names)
        with torch.no_grad():
            for p in model.trainable_parameters():
                p.add_(torch.randn_like(p) * 0.2)
        name = f"{task_name}-{i}"
        out[name] = save_adapter(model, root / name, extra={"task": task.name, "max_length": 128})
    return out


def record_pools() -> dict[str, list[dict]]:
    """Request records per task, from the official val (SuperGLUE) and dev (CoNLL03) files."""
    from adaprefix.tasks import get_task

    pools = {}
    for task in ("cb", "rte", "copa"):
        lines = (DATA / "superglue" / task / "val.jsonl").read_text().splitlines()
        pools[task] = [json.loads(line) for line in lines if line.strip()]
    pools["conll03"] = [{"idx": i, "tokens": ex.words} for i, ex in enumerate(get_task("conll03").load("val", DATA)[:500])]
    return pools


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(q / 100 * (len(values) - 1))))
    return values[k]


async def run_level(url: str, adapters: dict[str, str], pools, concurrency: int, requests: int, max_records: int,
                    seed: int) -> dict:
    """``requests`` requests with at most ``concurrency`` in flight; latency and errors per request."""
    import httpx

    rng = random.Random(seed)
    bodies = []
    for _ in range(requests):
        name = rng.choice(sorted(adapters))
        pool = pools[adapters[name]]
        bodies.append({"adapter": name, "records": rng.sample(pool, rng.randint(1, max_records))})
    latencies: list[float] = []
    errors: list[str] = []
    queue: asyncio.Queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        before = (await client.get("/health")).json()

        async def worker():
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                start = time.perf_counter()
                try:
                    response = await client.post("/predict", json=body)
                    if response.status_code != 200 or len(response.json()["predictions"]) < len(body["records"]):
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as err:
                    errors.append(repr(err))
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
        after = (await client.get("/health")).json()
    records = sum(len(b["records"]) for b in bodies)
    batches, rows = after["batches"] - before["batches"], after["rows"] - before["rows"]
    forwards = after["forwards"] - before["forwards"]
    ms = [x * 1000 for x in latencies]
    return {
        "concurrency": concurrency, "requests": requests, "served_ok": requests - len(errors), "errors": len(errors),
        "error_samples": errors[:5], "records": records, "wall_s": wall, "requests_per_s": requests / wall,
        "records_per_s": records / wall, "latency_ms": {"p50": percentile(ms, 50), "p90": percentile(ms, 90),
                                                        "p99": percentile(ms, 99), "max": max(ms),
                                                        "mean": statistics.fmean(ms)},
        "gathered_batches": batches, "model_forwards": forwards, "encoder_rows": rows,
        "mean_rows_per_forward": rows / forwards if forwards else 0.0,
    }


def server_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    from adaprefix.training import provenance as run_provenance  # commit, versions, CPU model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running server (then --adapter-tasks says which task each has)")
    parser.add_argument("--adapter-tasks", default="", help="with --url: NAME=TASK,... for the running server")
    parser.add_argument("--adapters", type=int, default=4, help="random adapters to build and serve (default 4)")
    parser.add_argument("--levels", default="1,4,16", help="concurrency levels (default 1,4,16)")
    parser.add_argument("--requests", type=int, default=120, help="requests per level (default 120)")
    parser.add_argument("--max-records", type=int, default=4, help="records per request, 1 to this (default 4)")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--label", default="", help="a note stored with the results")
    parser.add_argument("--server-threads", type=int, default=1, help="torch threads of the server (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pools = record_pools()
    server = None
    if args.url:
        url = args.url
        adapters = dict(item.split("=", 1) for item in args.adapter_tasks.split(",") if item)
        command = None
    else:
        root = Path(tempfile.mkdtemp(prefix="load-test-"))
        dirs = make_adapters(root, args.adapters)
        adapters = {name: name.rsplit("-", 1)[0] for name in dirs}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [str(Path(sys.executable).parent / "adaprefix"), "serve", "--port", str(port),
                   "--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
        for name, d in dirs.items():
            command += ["--adapter", f"{name}={d}"]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.server_threads), "MKL_NUM_THREADS": str(args.server_threads)}
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        import httpx

        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server is not None and server.poll() is not None:
                raise SystemExit(f"server exited: {server.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                raise SystemExit("server did not come up in 180 s")
            time.sleep(0.5)
        listing = httpx.get(f"{url}/adapters").json()["adapters"]
        print(f"server {url}: {len(listing)} adapters ({', '.join(a['name'] for a in listing)}); "
              f"max batch {args.max_batch}, max wait {args.max_wait_ms} ms, {args.server_threads} torch thread(s)")
        levels = []
        for level in (int(x) for x in args.levels.split(",")):
            r = asyncio.run(run_level(url, adapters, pools, level, args.requests, args.max_records, args.seed + level))
            levels.append(r)
            lat = r["latency_ms"]
            print(f"  concurrency {level:3d}: {r['served_ok']}/{r['requests']} ok, {r['errors']} errors, "
                  f"{r['requests_per_s']:6.2f} req/s, {r['records_per_s']:6.2f} records/s, latency ms p50 "
                  f"{lat['p50']:.0f} p90 {lat['p90']:.0f} p99 {lat['p99']:.0f} max {lat['max']:.0f}; "
                  f"{r['mean_rows_per_forward']:.1f} rows per forward")
        rss = server_rss_mib(server.pid) if server is not None else None
        if rss is not None:
            print(f"  server resident set: {rss:.0f} MiB")
        result = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]), "server_command": command,
            "settings": vars(args), "levels": levels, "server_rss_mib": rss,
            "provenance": {**run_provenance(), "python": platform.python_version(),
                           "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        }
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
            print(f"wrote {args.json}")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
