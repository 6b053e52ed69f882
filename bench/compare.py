#!/usr/bin/env python3
"""Compares two bench/results.json files figure by figure: before, after, after/before, and
whether the change is worse by more than a tolerance (5% unless --tolerance says otherwise).
Throughput ratios and "share of the floor" are better when higher; times, CPU and memory are
better when lower.

    bench/compare.py BEFORE.json AFTER.json [--tolerance 0.05]

Exits 1 when a figure is worse by more than the tolerance (noise on a shared machine can do
that: rerun the case before believing it).
"""
import argparse
import json
import sys

# Figures per API/scale case: name -> True when higher is better.
CASE_FIGURES = {"rps": True, "of_floor": True, "p99_ms": False, "server_cpu_us_per_request": False, "postgres_cpu_us_per_request": False}
TASK_FIGURES = {
    "task_latency": {"launch_to_succeeded_median_s": False, "ratio": False, "ratio_engine_commands": False},
    "task_throughput": {"wall_seconds": False, "ratio": False, "ratio_engine_commands": False},
    "task_memory": {"in_flight_hwm_mb": False},
    "memory_api": {"idle_hwm_kb": False, "after_api_load_hwm_kb": False},
}


def figures(results):
    """(name, value, higher_is_better) for every compared figure of one results file."""
    for section in ("api", "write", "scale", "pg_api", "pg_write", "pg_scale"):
        for case in results.get(section) or []:
            label = f"{section} {case['case']} c={case['concurrency']}"
            for key, higher in CASE_FIGURES.items():
                if case.get(key) is not None:
                    yield f"{label} {key}", case[key], higher
    for section, keys in TASK_FIGURES.items():
        for prefix in ("", "pg_"):
            for key, higher in keys.items():
                value = (results.get(prefix + section) or {}).get(key)
                if value is not None:
                    yield f"{prefix}{section} {key}", value, higher


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args()
    with open(args.before) as b, open(args.after) as a:
        before = {name: (value, higher) for name, value, higher in figures(json.load(b))}
        after = {name: value for name, value, _ in figures(json.load(a))}
    worse = 0
    print(f"{'figure':<72} {'before':>10} {'after':>10} {'ratio':>7}")
    for name, (old, higher) in before.items():
        if name not in after:
            continue
        new = after[name]
        ratio = new / old if old else float("inf")
        bad = (ratio < 1 - args.tolerance) if higher else (ratio > 1 + args.tolerance)
        worse += bad
        print(f"{name:<72} {old:>10} {new:>10} {ratio:>7.3f}{'  WORSE' if bad else ''}")
    print(f"\n{worse} of {len(after)} figures worse by more than {args.tolerance:.0%}")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
