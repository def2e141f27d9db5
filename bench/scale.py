"""Scale: with 100,000 future tasks stored, due tasks still fire on time and `GET /tasks`
pages stay fast.

Stores N future tasks (due over the next 30 days) directly in the embedded PostgreSQL, then
runs the precision measurement (500 HTTP tasks due over 10 s) and pages through
`GET /tasks?state=scheduled` (following `next_cursor`) measuring each page's latency.

    python bench/scale.py --stored 100000 --runs 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Client, percentile, summarize, tasker_with_target  # noqa: E402
from bench.precision import one_run as precision_run  # noqa: E402

FILL = """
WITH c AS (
    INSERT INTO clients (name) VALUES ('scale') ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id
), t AS (
    INSERT INTO tasks (id, client_id, task_type, params, status, schedule, run_count, next_run_at)
    SELECT md5('scale' || g), (SELECT id FROM c), 'http',
           jsonb_build_object('url', 'http://127.0.0.1:9/never', 'method', 'GET', 'headers', '{}'::jsonb, 'timeout_s', 30),
           'scheduled', jsonb_build_object('kind', 'once', 'timezone', 'UTC', 'misfire', 'run_once'),
           1, now() + interval '1 day' + g * interval '25 seconds'
    FROM generate_series(1, %(n)s) AS g
    RETURNING id, next_run_at
)
INSERT INTO runs (id, task_id, task_type, status, due_at, scheduled_for)
SELECT md5('run' || id), id, 'http', 'pending', next_run_at, next_run_at FROM t
"""


def page_latencies(api_url: str, pages: int, key: str | None = None) -> list[float]:
    client = Client(api_url, key)
    out: list[float] = []
    cursor = None
    for _ in range(pages):
        path = "/tasks?state=scheduled&limit=50&client=*" + (f"&cursor={cursor}" if cursor else "")
        t0 = time.perf_counter()
        status, body = client.request("GET", path)
        out.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise RuntimeError(f"GET /tasks answered {status}")
        cursor = body["next_cursor"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    with tasker_with_target() as (runtime, target):
        conn = psycopg2.connect(runtime["database_url"])
        conn.autocommit = True
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(FILL, {"n": args.stored})
            cur.execute("ANALYZE")
        conn.close()
        print(f"stored {args.stored} future tasks in {time.perf_counter() - t0:.1f} s", flush=True)
        for i in range(args.runs):
            lateness = precision_run(runtime["api_url"], target, 500, 10.0, 5.0, f"s{i}", runtime["admin_key"])
            pages = page_latencies(runtime["api_url"], args.pages, runtime["admin_key"])
            r = {**lateness, "page_p50_ms": percentile(pages, 50), "page_p99_ms": percentile(pages, 99),
                 "page_max_ms": max(pages)}
            results.append(r)
            print(f"run {i + 1}: lateness p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms; "
                  f"GET /tasks page p50 {r['page_p50_ms']:.1f} ms, p99 {r['page_p99_ms']:.1f} ms", flush=True)
    summary = summarize("scale", results)
    print(f"median of {len(results)}: lateness p99 {summary['p99_ms']:.1f} ms; GET /tasks p99 {summary['page_p99_ms']:.1f} ms")


if __name__ == "__main__":
    main()
