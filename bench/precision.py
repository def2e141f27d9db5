"""Precision of scheduled HTTP tasks.

500 HTTP tasks due evenly over 10 s, starting 5 s ahead (50 per second), against a local
target that records arrival times. Lateness = arrival - due time. Runs on the embedded
default (`tasker up`); prints p50/p95/p99/max per run and the median of the runs.

    python bench/precision.py --runs 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import Client, Recorder, percentile, post_batch, summarize, tasker_with_target  # noqa: E402


def one_run(api_url: str, target: Recorder, n: int, spread_s: float, ahead_s: float, tag: str,
            key: str | None = None) -> dict[str, float]:
    client = Client(api_url, key)
    t0 = time.time() + ahead_s
    due = {f"{tag}-{i}": t0 + i * spread_s / n for i in range(n)}
    specs = [
        {"url": f"{target.url}/hit?i={key}", "run_at": dt.datetime.fromtimestamp(when, dt.UTC).isoformat(),
         "client_name": "bench", "retries": 0}
        for key, when in due.items()
    ]
    post_batch(client, specs)
    if time.time() > t0:
        raise RuntimeError("submission took longer than the lead; raise --ahead")
    deadline = t0 + spread_s + 30
    while time.time() < deadline and sum(1 for k in due if k in target.arrivals) < n:
        time.sleep(0.2)
    late = [(target.arrivals[k] - when) * 1000 for k, when in due.items() if k in target.arrivals]
    if len(late) < n:
        raise RuntimeError(f"only {len(late)} of {n} calls arrived")
    return {"p50_ms": percentile(late, 50), "p95_ms": percentile(late, 95), "p99_ms": percentile(late, 99),
            "max_ms": max(late), "min_ms": min(late)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--spread", type=float, default=10.0)
    parser.add_argument("--ahead", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    with tasker_with_target() as (runtime, target):
        for i in range(args.runs):
            r = one_run(runtime["api_url"], target, args.tasks, args.spread, args.ahead, f"r{i}", runtime["admin_key"])
            results.append(r)
            print(f"run {i + 1}: lateness p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
                  f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms (min {r['min_ms']:.1f} ms)", flush=True)
    summary = summarize("precision", results)
    print(f"median of {len(results)}: p50 {summary['p50_ms']:.1f} ms, p95 {summary['p95_ms']:.1f} ms, "
          f"p99 {summary['p99_ms']:.1f} ms, max {summary['max_ms']:.1f} ms")


if __name__ == "__main__":
    main()
