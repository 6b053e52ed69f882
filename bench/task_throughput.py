#!/usr/bin/env python3
"""Task throughput: N launches of a sample product queued at once on a server with the default
workers (one per core); the wall time from the first LaunchProduct to the last Succeeded, beside
three floors, with their ratios. Starts its own server. Floors run Terraform bare in the engine's
environment (task_latency.py: the workflow a task records, and the engine's own processes).

- `bare x N / workers`: the median bare workflow run (alone on the machine) times N, divided by
  the workers, as if W Terraform runs at once took no longer each than one alone.
- `engine processes x N / workers`: the same with only the Terraform processes the engine starts.
- `engine processes, W at a time`: those run bare W at a time (a pool of W) for `--bare-parallel`
  runs; the wall time per run, times N: what the machine does without the service, when one
  Terraform run (Terraform, its provider, their Go runtimes) keeps more than one core busy.

    .venv/bin/python bench/task_throughput.py [--launches 200] [--bare-runs 5] [--bare-parallel 20]
"""
import argparse, json, os, shutil, statistics, tempfile, time
from concurrent.futures import ThreadPoolExecutor

from task_latency import ENGINE_COMMANDS, SAMPLES, bare_run, client, launch, m, sample_version, start_server


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--launches", type=int, default=200)
    ap.add_argument("--bare-runs", type=int, default=5)
    ap.add_argument("--bare-parallel", type=int, default=20, help="bare runs made W at a time for the second floor")
    ap.add_argument("--product", default="Hello outputs", choices=sorted(SAMPLES))
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for the last task")
    ap.add_argument("--server-arg", action="append", default=[], help="one more flag for the server (repeatable)")
    a = ap.parse_args()
    workers = os.cpu_count()
    data = tempfile.mkdtemp()
    proc, port = start_server(data, *a.server_arg)
    try:
        c = client(data, port)
        product_id, version_id = sample_version(c, a.product)
        t0 = time.perf_counter()
        pending = {launch(c, product_id, version_id, f"tp-{i}") for i in range(a.launches)}
        queued = time.perf_counter() - t0
        failed, last = [], t0
        deadline = t0 + a.timeout
        while pending and time.perf_counter() < deadline:
            time.sleep(0.1)
            for page in range(1, 1 + (a.launches + 99) // 100):
                body = c.list_provisioned_products(m.ListProvisionedProductsRequest(page_size=100, page_number=page)).body
                for d in body.provisioned_product_details or []:
                    if d.provisioned_product_id in pending and d.status != "UnderChange":
                        pending.discard(d.provisioned_product_id)
                        last = time.perf_counter()
                        if d.status != "Available":
                            failed.append(d.status_message)
        if pending or failed:
            raise SystemExit(f"{len(pending)} launches unfinished, {len(failed)} failed: {failed[:1]}")
        wall = last - t0
        sandbox = os.path.join(data, "sandbox")
        bare = statistics.median(bare_run(a.product, sandbox) for _ in range(a.bare_runs))
        engine = statistics.median(bare_run(a.product, sandbox, ENGINE_COMMANDS) for _ in range(a.bare_runs))
        t1 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda _: bare_run(a.product, sandbox, ENGINE_COMMANDS), range(a.bare_parallel)))
        bare_parallel = (time.perf_counter() - t1) / a.bare_parallel
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)
    ideal = bare * a.launches / workers
    ideal_engine = engine * a.launches / workers
    machine = bare_parallel * a.launches
    result = {"product": a.product, "launches": a.launches, "workers": workers, "queue_seconds": round(queued, 3),
              "wall_seconds": round(wall, 3), "bare_terraform_median_s": round(bare, 3),
              "ideal_seconds": round(ideal, 3), "ratio": round(wall / ideal, 3),
              "bare_engine_commands_median_s": round(engine, 3), "ideal_engine_commands_seconds": round(ideal_engine, 3),
              "ratio_engine_commands": round(wall / ideal_engine, 3),
              "bare_parallel_runs": a.bare_parallel, "bare_parallel_seconds_per_run": round(bare_parallel, 3),
              "bare_parallel_seconds": round(machine, 3), "ratio_bare_parallel": round(wall / machine, 3)}
    print(f"{a.launches} launches, {workers} workers: last Succeeded after {wall:.2f} s (queued in {queued:.2f} s)\n"
          f"  bare workflow {bare:.3f} s x {a.launches} / {workers} = {ideal:.2f} s; ratio {wall / ideal:.2f} (target <= 1.25)\n"
          f"  bare engine processes {engine:.3f} s x {a.launches} / {workers} = {ideal_engine:.2f} s; ratio {wall / ideal_engine:.2f}\n"
          f"  bare engine processes {workers} at a time: {bare_parallel:.3f} s per run x {a.launches} = {machine:.2f} s; ratio {wall / machine:.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
