"""The bundled sandbox provider as the engine runs it: per-product sandboxes, confinement of
paths, drift repaired by the next update, provider validation errors in StatusMessage, and
several launches at once."""
from __future__ import annotations

import time

from sclib import expect_error, uniq
from test_provisioning import (
    FILE_TF, SANDBOX_HEADER, TASK_DEADLINE, get_pp, get_task, launch, launched_product, make_product, needs_provider,
    needs_terraform, sandbox_files, terminate, terraform_logs, update, wait_task,
)

pytestmark = [needs_terraform, needs_provider]


def test_each_provisioned_product_has_its_own_sandbox(server, admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin_v3, FILE_TF, users=[user])
    first, t1 = launch(caller, product, {"dir": "same", "content": "first"})
    second, t2 = launch(caller, product, {"dir": "same", "content": "second"})
    assert wait_task(caller, t1)["Status"] == "Succeeded"
    assert wait_task(caller, t2)["Status"] == "Succeeded"
    assert sandbox_files(server, first) == {"same/page.txt": "first"}
    assert sandbox_files(server, second) == {"same/page.txt": "second"}
    assert wait_task(caller, terminate(caller, first))["Status"] == "Succeeded"
    assert sandbox_files(server, first) == {}
    assert sandbox_files(server, second) == {"same/page.txt": "second"}
    assert wait_task(caller, terminate(caller, second))["Status"] == "Succeeded"


def test_drift_is_repaired_by_the_next_update(server, admin_v3, end_user):
    caller, product, pp_id, _ = launched_product(admin_v3, end_user, FILE_TF, {"dir": "d", "content": "v1"})
    page = server.data_dir / "sandbox" / pp_id / "d" / "page.txt"
    assert page.read_text() == "v1"
    page.write_text("edited by hand")
    fixed = wait_task(caller, update(caller, pp_id, product, {"content": "v2"}))
    assert fixed["Status"] == "Succeeded", fixed
    assert page.read_text() == "v2"
    page.unlink()
    recreated = wait_task(caller, update(caller, pp_id, product, {"content": "v3"}))
    assert recreated["Status"] == "Succeeded", recreated
    assert "1 added" in terraform_logs(recreated, "apply")
    assert sandbox_files(server, pp_id) == {"d/page.txt": "v3"}
    assert wait_task(caller, terminate(caller, pp_id))["Status"] == "Succeeded"


def test_paths_outside_the_sandbox_are_refused(server, admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    escape = uniq("escape-") + ".txt"
    tf = SANDBOX_HEADER + """
variable "path" {
  type = string
}

resource "sandbox_file" "f" {
  path    = var.path
  content = "must not be written"
}
"""
    product = make_product(admin_v3, tf, users=[user])
    for path in (f"../{escape}", f"/tmp/{escape}"):
        pp_id, task_id = launch(caller, product, {"path": path})
        task = wait_task(caller, task_id)
        assert task["Status"] == "Failed", task
        assert task["StatusMessage"].startswith("terraform "), task["StatusMessage"]
        assert "Error" in task["StatusMessage"]
        pp = get_pp(caller, pp_id)
        assert pp["Status"] == "Error" and pp["StatusMessage"] == task["StatusMessage"]
        assert sandbox_files(server, pp_id) == {}
        assert not (server.data_dir / "sandbox" / escape).exists()
        assert not (server.data_dir / "sandbox" / pp_id).parent.joinpath(escape).exists()
        # a valid path repairs it
        fixed = wait_task(caller, update(caller, pp_id, product, {"path": "inside.txt"}))
        assert fixed["Status"] == "Succeeded", fixed
        assert sandbox_files(server, pp_id) == {"inside.txt": "must not be written"}
        assert wait_task(caller, terminate(caller, pp_id))["Status"] == "Succeeded"


# a configuration the provider refuses when it validates it
INVALID_TF = SANDBOX_HEADER + """
resource "sandbox_sleep" "bad" {
  duration_ms = -5
}
"""


def failed_launch(admin_v3, end_user) -> tuple:
    """The end user's launch of INVALID_TF, once failed -> (their caller, the pp id, the task)."""
    user, caller_of = end_user
    caller = caller_of("v3")
    pp_id, task_id = launch(caller, make_product(admin_v3, INVALID_TF, users=[user]))
    task = wait_task(caller, task_id)
    assert task["Status"] == "Failed", task
    return caller, pp_id, task


def test_a_provider_validation_error_reaches_the_status_message(server, admin_v3, end_user):
    caller, pp_id, task = failed_launch(admin_v3, end_user)
    assert "duration_ms" in task["StatusMessage"], task["StatusMessage"]
    assert get_pp(caller, pp_id)["Status"] == "Error"


def test_a_product_whose_configuration_never_validated_can_be_terminated(server, admin_v3, end_user):
    """Nothing was created and no update can repair a constant in the template: terminating
    is the owner's only way out (and the server's own failure messages recommend it)."""
    caller, pp_id, _ = failed_launch(admin_v3, end_user)
    ended = wait_task(caller, terminate(caller, pp_id))
    assert ended["Status"] == "Succeeded", ended.get("StatusMessage")
    expect_error(404, "EntityNotExists.ProvisionedProduct", get_pp, caller, pp_id)


def test_several_launches_at_once_all_succeed(server, admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin_v3, FILE_TF, users=[user])
    launched = [launch(caller, product, {"dir": f"d{i}", "content": f"c{i}"}) for i in range(6)]
    end = time.monotonic() + TASK_DEADLINE
    for i, (pp_id, task_id) in enumerate(launched):
        task = wait_task(caller, task_id, deadline=max(1.0, end - time.monotonic()))
        assert task["Status"] == "Succeeded", task
        assert "Apply complete! Resources: 1 added" in terraform_logs(task, "apply"), task["Log"]
        assert sandbox_files(server, pp_id) == {f"d{i}/page.txt": f"c{i}"}
    ended = [terminate(caller, pp_id) for pp_id, _ in launched]
    for (pp_id, _), task_id in zip(launched, ended):
        assert wait_task(caller, task_id)["Status"] == "Succeeded"
        assert sandbox_files(server, pp_id) == {}
    assert all(get_task(caller, t)["TaskType"] == "TerminateProvisionedProduct" for t in ended)
