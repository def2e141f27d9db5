"""Concurrency of HTTP tasks: 1,000 calls to a target that answers after 100 ms, on the
embedded default with its default number of taskers. Measures the time from the start of
submission (POST /tasks/batch, 100 per request) until every attempt is recorded.

    python bench/concurrency.py --runs 3
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Client, Recorder, post_batch, summarize, tasker_with_target, wait_recorded  # noqa: E402


def one_run(runtime: dict[str, str], target: Recorder, n: int, delay_ms: int) -> dict[str, float]:
    client = Client(runtime["api_url"], runtime["admin_key"])
    name = f"conc-{uuid.uuid4().hex[:8]}"
    specs = [{"url": f"{target.url}/slow?i={name}-{i}&delay_ms={delay_ms}", "client_name": name, "retries": 0}
             for i in range(n)]
    conn = psycopg2.connect(runtime["database_url"])
    conn.autocommit = True
    start = time.perf_counter()
    post_batch(client, specs)
    submitted = time.perf_counter() - start
    with conn.cursor() as cur:
        _, failed = wait_recorded(cur, name, n, start, timeout_s=120, poll_s=0.01)
    elapsed = time.perf_counter() - start
    conn.close()
    if failed:
        raise RuntimeError(f"{failed} calls failed")
    return {"seconds": elapsed, "submit_seconds": submitted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--delay-ms", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    with tasker_with_target() as (runtime, target):
        one_run(runtime, target, 100, args.delay_ms)  # warm-up
        for i in range(args.runs):
            r = one_run(runtime, target, args.tasks, args.delay_ms)
            results.append(r)
            print(f"run {i + 1}: {args.tasks} calls recorded {r['seconds']:.2f} s after submission began "
                  f"(submission took {r['submit_seconds']:.2f} s)", flush=True)
    summary = summarize("concurrency", results)
    print(f"median of {len(results)}: {summary['seconds']:.2f} s")


if __name__ == "__main__":
    main()
