"""Reuse of `terraform init` across tasks, through the official SDK against the real binary: the
first task of a template runs `init` and the engine keeps what it made; later tasks with the same
Workspace files, launch role and Terraform binary reuse it (their `init` log says so, and from
what) without starting `init`; another template or binary runs `init` again; a prepared
directory that no longer matches its manifest is built again. The bundled provider's lock file
carries its checksum before the first `init`, so the Static website sample never warns of an
incomplete lock file. Sandboxed, except where a wrapper counts Terraform's calls on the host.
"""
from __future__ import annotations

import re
from pathlib import Path

from test_provisioning import (
    HELLO_TF, _terraform_binary, launch, make_product, needs_provider, needs_terraform, new_user, outputs,
    terraform_logs, update, wait_task,
)

pytestmark = [needs_terraform]

REUSED = "terraform init did not run"
KEPT = "kept what init made"
INITIALISED = "Terraform has been successfully initialized"
WEBSITE_TF = (Path(__file__).resolve().parents[2] / "samples" / "website" / "main.tf").read_text()


def counting_wrapper(tmp_path: Path) -> tuple[Path, Path]:
    """A `terraform` that records its subcommand, then runs the real binary."""
    calls, wrapper = tmp_path / "calls", tmp_path / "terraform"
    wrapper.write_text(f'#!/bin/sh\necho "$1" >> "{calls}"\nexec "{_terraform_binary()}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, calls


def inits(calls: Path) -> int:
    return calls.read_text().split().count("init") if calls.exists() else 0


def succeeded(caller, task_id: str) -> dict:
    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    return task


def prepared_dir(data_dir: Path, task: dict) -> Path:
    """The prepared directory a task's `init` log names."""
    short = re.search(r"prepared init ([0-9a-f]{12})", terraform_logs(task, "init")).group(1)
    [found] = [d for d in (data_dir / "init").iterdir() if d.name.startswith(short) and not d.name.endswith(".partial")]
    return found


def test_a_template_initialises_once_and_later_tasks_reuse_it(fresh_server, tmp_path):
    wrapper, calls = counting_wrapper(tmp_path)
    srv = fresh_server(args=["--terraform", str(wrapper), "--workers", "2", "--task-isolation", "none"])
    admin = srv.caller("v3")
    user, caller, _ = new_user(srv)
    product = make_product(admin, HELLO_TF, users=[user])
    first = succeeded(caller, launch(caller, product, {"owner": "first"})[1])
    assert inits(calls) == 1
    assert INITIALISED in terraform_logs(first, "init") and KEPT in terraform_logs(first, "init")
    # Queued together on two workers: none starts init again.
    ids = [launch(caller, product, {"owner": f"o{i}", "times": "2"})[1] for i in range(4)]
    later = [succeeded(caller, task_id) for task_id in ids]
    assert inits(calls) == 1, calls.read_text()
    for i, task in enumerate(later):
        log = terraform_logs(task, "init")
        assert REUSED in log and INITIALISED not in log and "No providers." in log, log
        assert str(wrapper) in log and "Terraform v" in log, log
        assert outputs(task)["owner_size"]["OutputValue"] == f"o{i}/small"
    # An update reuses it too.
    pp_id, task_id = launch(caller, product, {"owner": "u"})
    succeeded(caller, task_id)
    assert REUSED in terraform_logs(succeeded(caller, update(caller, pp_id, product, {"owner": "v"})), "init")
    assert inits(calls) == 1
    # Other Workspace files: init runs.
    other = make_product(admin, HELLO_TF + "\n# another template\n", users=[user])
    assert INITIALISED in terraform_logs(succeeded(caller, launch(caller, other, {"owner": "b"})[1]), "init")
    assert inits(calls) == 2
    # The same path, another binary (the wrapper rewritten): init runs again, then is reused.
    wrapper.write_text(wrapper.read_text() + "# changed\n")
    assert INITIALISED in terraform_logs(succeeded(caller, launch(caller, product, {"owner": "c"})[1]), "init")
    assert REUSED in terraform_logs(succeeded(caller, launch(caller, product, {"owner": "d"})[1]), "init")
    assert inits(calls) == 3, calls.read_text()


@needs_provider
def test_the_static_website_reuses_its_provider_in_the_sandbox_and_its_lock_file_is_complete(server, admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin_v3, WEBSITE_TF, users=[user])
    first = succeeded(caller, launch(caller, product, {"title": "One"})[1])
    assert INITIALISED in terraform_logs(first, "init") and KEPT in terraform_logs(first, "init")
    pp_id, task_id = launch(caller, product, {"title": "Two"})
    second = succeeded(caller, task_id)
    log = terraform_logs(second, "init")
    assert REUSED in log and "- servicecatalog.local/demo/sandbox v0.1.0" in log, log
    assert outputs(second)["index_path"]["OutputValue"] == "site/index.html"
    page = server.data_dir / "sandbox" / pp_id / "site" / "index.html"
    assert "<h1>Two</h1>" in page.read_text()
    changed = succeeded(caller, update(caller, pp_id, product, {"title": "Three"}))
    assert REUSED in terraform_logs(changed, "init") and "<h1>Three</h1>" in page.read_text()
    # The lock file had the provider's checksum before the first init: no warning, ever.
    for task in (first, second, changed):
        assert "Incomplete lock file" not in terraform_logs(task), terraform_logs(task)
    prepared = prepared_dir(server.data_dir, second)
    assert "h1:" in (prepared / ".terraform.lock.hcl").read_text()


def test_a_broken_prepared_directory_is_built_again(server, admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin_v3, HELLO_TF + "\n# broken, then rebuilt\n", users=[user])
    first = succeeded(caller, launch(caller, product, {"owner": "a"})[1])
    assert KEPT in terraform_logs(first, "init")
    prepared = prepared_dir(server.data_dir, first)
    for breakage in (lambda: (prepared / ".terraform" / "terraform.tfstate").write_text("{}"),  # cut short
                     lambda: (prepared / "prepared.json").unlink(),  # no manifest: never whole
                     lambda: (prepared / ".terraform" / "stray").write_text("x")):  # not in the manifest
        breakage()
        rebuilt = succeeded(caller, launch(caller, product, {"owner": "b"})[1])
        log = terraform_logs(rebuilt, "init")
        assert INITIALISED in log and KEPT in log and REUSED not in log, log
        assert REUSED in terraform_logs(succeeded(caller, launch(caller, product, {"owner": "c"})[1]), "init")
