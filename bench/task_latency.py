#!/usr/bin/env python3
"""Task latency: median time from LaunchProduct to Succeeded for a sample product, beside two floors
run bare in a fresh directory with the engine's environment, and the ratios:

- the Terraform workflow whose results a task records: version, init, plan -out, apply, output -json;
- the Terraform processes the engine starts for it: init, plan -out, apply (it runs `version` once
  per binary and reads the outputs from the state), i.e. what the service adds to Terraform.

And what the sandbox adds to a task: the same launches, alternating, on a second server with
`--task-isolation none` (median of the paired differences).

Starts its own servers on free loopback ports.

    .venv/bin/python bench/task_latency.py [--runs 9] [--product "Hello outputs"] [--server-arg FLAG …] [--open-server-arg FLAG …]

(`--server-arg`/`--open-server-arg`: more flags for the sandboxed/unsandboxed server, e.g. each its own
`--database postgres://…`.)
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "conformance"))
from alibabacloud_tea_openapi import utils_models as om  # noqa: E402
from alibabacloud_servicecatalog20210901.client import Client  # noqa: E402
from alibabacloud_servicecatalog20210901 import models as m  # noqa: E402

SAMPLES = {"Hello outputs": "samples/hello/main.tf", "Static website": "samples/website/main.tf"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data, *extra):
    """The release server with the sample catalog on a free loopback port (`extra`: more flags)."""
    port = free_port()
    binary = os.environ.get("SERVICECATALOG_BIN", os.path.join(ROOT, "target/release/servicecatalog"))
    proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--sample-catalog", *extra],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(data, "server.log"), "w"))
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def client(data, port):
    """An SDK client with the administrator key the server generated in `data`."""
    key = json.load(open(os.path.join(data, "root-credentials.json")))
    return Client(om.Config(access_key_id=key["AccessKeyId"], access_key_secret=key["AccessKeySecret"],
                            endpoint=f"127.0.0.1:{port}", protocol="http"))


def sample_version(c, product):
    """(product id, version id) of a sample product."""
    prod = next(p for p in c.list_products_as_end_user(m.ListProductsAsEndUserRequest()).body.product_summaries
                if p.product_name == product)
    return prod.product_id, c.list_product_versions(m.ListProductVersionsRequest(product_id=prod.product_id)).body.product_version_details[0].product_version_id


def launch(c, product_id, version_id, name):
    """LaunchProduct; the provisioned product's id."""
    return c.launch_product(m.LaunchProductRequest(product_id=product_id, product_version_id=version_id,
                                                   provisioned_product_name=name, stack_region_id="cn-hangzhou")).body.provisioned_product_id


def wait_settled(c, pp, deadline):
    """Polls the provisioned product until it leaves UnderChange (or the deadline passes)."""
    while True:
        d = c.get_provisioned_product(m.GetProvisionedProductRequest(provisioned_product_id=pp)).body.provisioned_product_detail
        if d.status != "UnderChange" or time.time() > deadline:
            return d
        time.sleep(0.005)


INIT, PLAN = ["init", "-input=false", "-no-color"], ["plan", "-input=false", "-no-color", "-out=tfplan"]
APPLY = ["apply", "-input=false", "-no-color", "-auto-approve", "tfplan"]
WORKFLOW = (["version"], INIT, PLAN, APPLY, ["output", "-json"])
ENGINE_COMMANDS = (INIT, PLAN, APPLY)
# The engine's default `--terraform-gogc`: the floors run Terraform in the engine's environment.
ENGINE_GOGC = "400"


def bare_run(product, sandbox, commands=WORKFLOW):
    """Terraform `commands` run directly, as the engine runs them: a floor."""
    d = tempfile.mkdtemp()
    try:
        shutil.copy(os.path.join(ROOT, SAMPLES[product]), os.path.join(d, "main.tf"))
        env = {"PATH": os.environ["PATH"], "HOME": d, "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1",
               "TF_FORK": "0", "GOGC": ENGINE_GOGC, "SANDBOX_ROOT": os.path.join(sandbox, os.path.basename(d))}
        rc = os.path.join(sandbox, "..", "providers", "terraform.rc")
        if os.path.exists(rc):
            env["TF_CLI_CONFIG_FILE"] = rc
        t0 = time.perf_counter()
        for args in commands:
            subprocess.run(["terraform", *args], cwd=d, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def timed_launch(c, product_id, version_id, name):
    """Seconds from LaunchProduct to the product's settling; fails unless it became Available."""
    t0 = time.perf_counter()
    pp = launch(c, product_id, version_id, name)
    d = wait_settled(c, pp, time.time() + 120)
    if d.status != "Available":
        raise SystemExit(f"launch failed: {d.status_message}")
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--product", default="Hello outputs", choices=sorted(SAMPLES))
    ap.add_argument("--server-arg", action="append", default=[], help="one more flag for the sandboxed server (repeatable)")
    ap.add_argument("--open-server-arg", action="append", default=[], help="one more flag for the unsandboxed server (repeatable)")
    a = ap.parse_args()
    data, open_data = tempfile.mkdtemp(), tempfile.mkdtemp()
    proc, port = start_server(data, *a.server_arg)
    open_proc, open_port = start_server(open_data, "--task-isolation", "none", *a.open_server_arg)
    try:
        c, open_c = client(data, port), client(open_data, open_port)
        product_id, version_id = sample_version(c, a.product)
        open_product_id, open_version_id = sample_version(open_c, a.product)
        served, unsandboxed = [], []
        for i in range(a.runs):
            served.append(timed_launch(c, product_id, version_id, f"bench-{i}"))
            unsandboxed.append(timed_launch(open_c, open_product_id, open_version_id, f"bench-{i}"))
        sandbox = os.path.join(data, "sandbox")
        bare, engine = [], []
        for _ in range(a.runs):
            bare.append(bare_run(a.product, sandbox))
            engine.append(bare_run(a.product, sandbox, ENGINE_COMMANDS))
    finally:
        for p in (proc, open_proc):
            p.terminate()
            p.wait()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(open_data, ignore_errors=True)
    s, b, e = statistics.median(served), statistics.median(bare), statistics.median(engine)
    cost_ms = statistics.median(x - y for x, y in zip(served, unsandboxed)) * 1000
    result = {"product": a.product, "runs": a.runs, "launch_to_succeeded_median_s": round(s, 3),
              "bare_terraform_median_s": round(b, 3), "ratio": round(s / b, 3),
              "bare_engine_commands_median_s": round(e, 3), "ratio_engine_commands": round(s / e, 3),
              "unsandboxed_median_s": round(statistics.median(unsandboxed), 3), "sandbox_cost_ms": round(cost_ms, 1)}
    print(f"{'product':<48}{a.product}\n{'LaunchProduct -> Succeeded':<48}{s:.3f} s (median of {a.runs})\n"
          f"{'bare workflow (version .. output -json)':<48}{b:.3f} s  ratio {s / b:.2f}  (target <= 1.30)\n"
          f"{'bare, the engine processes (init, plan, apply)':<48}{e:.3f} s  ratio {s / e:.2f}\n"
          f"{'the same task unsandboxed (--task-isolation none)':<48}{statistics.median(unsandboxed):.3f} s\n"
          f"{'sandbox cost per task (median paired difference)':<48}{cost_ms:.1f} ms  (target <= 10)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
