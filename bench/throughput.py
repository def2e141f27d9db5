"""Throughput of the core service on the embedded default.

Submits N `sum2` requests with distinct params through the HTTP API (`POST /process`, keep-
alive connections from several threads) and measures the time from the first submission until
every result is recorded in PostgreSQL, plus the API's latency percentiles during that load.

    python bench/throughput.py --requests 5000 --runs 3

Each run uses fresh params (nothing is served from the cache). The median of the runs is
printed last and written to bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Client, percentile, summarize, tasker_up, wait_recorded  # noqa: E402


def one_run(api_url: str, database_url: str, n: int, concurrency: int, key: str | None = None) -> dict[str, float]:
    client_name = f"bench-{uuid.uuid4().hex[:8]}"
    nonce = int(time.time() * 1000) % 10_000_000
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(n))

    def submit() -> None:
        client = Client(api_url, key)
        local: list[float] = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            body = {"task": "sum2", "client_name": client_name, "params": {"first": i, "second": nonce}}
            t0 = time.perf_counter()
            status, answer = client.request("POST", "/process", body)
            local.append((time.perf_counter() - t0) * 1000)
            if status not in (200, 201) or answer.get("process", {}).get("cached"):
                errors.append(f"{status} {answer}")
                break
        with lock:
            latencies.extend(local)

    conn = psycopg2.connect(database_url.replace("postgresql+psycopg2://", "postgresql://"))
    conn.autocommit = True
    threads = [threading.Thread(target=submit) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    submitted = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} submissions failed, e.g. {errors[:3]}")
    with conn.cursor() as cur:
        done, failed = wait_recorded(cur, client_name, n, start, timeout_s=600, poll_s=0.02)
        elapsed = time.perf_counter() - start
        cur.execute(
            """SELECT count(*) FROM tasks t JOIN clients c ON c.id = t.client_id
               WHERE c.name = %s AND t.status = 'completed' AND t.result = to_jsonb(
                   (t.params->>'first')::bigint + (t.params->>'second')::bigint)""",
            (client_name,),
        )
        correct = cur.fetchone()[0]
    conn.close()
    if failed or correct != n:
        raise RuntimeError(f"{failed} failed, {correct} of {n} correct results")
    return {
        "tasks": n,
        "seconds": elapsed,
        "tasks_per_s": n / elapsed,
        "submit_seconds": submitted,
        "api_p50_ms": percentile(latencies, 50),
        "api_p99_ms": percentile(latencies, 99),
        "api_max_ms": max(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=6,
                        help="clients submitting at once, each on a keep-alive connection")
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args()
    results = []
    with tasker_up() as runtime:
        if args.warmup:
            one_run(runtime["api_url"], runtime["database_url"], args.warmup, args.concurrency, runtime["admin_key"])
        for i in range(args.runs):
            r = one_run(runtime["api_url"], runtime["database_url"], args.requests, args.concurrency, runtime["admin_key"])
            results.append(r)
            print(f"run {i + 1}: {r['tasks']} tasks in {r['seconds']:.2f}s = {r['tasks_per_s']:.0f} tasks/s; "
                  f"API p50 {r['api_p50_ms']:.1f} ms, p99 {r['api_p99_ms']:.1f} ms", flush=True)
    summary = summarize("throughput", results)
    print(f"median of {len(results)}: {summary['tasks_per_s']:.0f} tasks/s end to end; "
          f"API p50 {summary['api_p50_ms']:.1f} ms, p99 {summary['api_p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()
