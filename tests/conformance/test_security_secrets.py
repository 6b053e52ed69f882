"""Secrets never leave: values of sensitive variables and sensitive outputs, which Terraform and
providers print when a launch, an update or a plan's preview fails (the variables file's line quoted
in an error, a validation message interpolating the value, a provider's error quoting it), are
masked in every answer (tasks, task logs, provisioned products, plans as their owner and their
approver see them, the audit trail, the console's pages), in the server's log and in the database
(SQLite's files read byte by byte, WAL included; every row of every PostgreSQL table). Values
hold a quote, a backslash and a newline, so their raw, JSON-escaped and HCL-escaped forms all
count. Tasks and plans are awaited by bounded polling.
"""
from __future__ import annotations

import hashlib
import html
import json
import subprocess

from sclib import uniq
from test_plans import create_plan, execute, wait_plan
from test_provisioning import (
    MASK, SANDBOX_HEADER, full_task_log, get_pp, launch, make_product, needs_provider, needs_terraform, new_user,
    outputs, terraform_logs, update, wait_task,
)

pytestmark = [needs_terraform, needs_provider]

# A sensitive number given a string (Terraform quotes the variables file's line, which holds every
# value) and a sensitive string whose validation message interpolates it.
INVALID_TF = """
variable "port" {
  type      = string
  sensitive = true
  validation {
    condition     = can(tonumber(var.port))
    error_message = "The port ${var.port} is not a number."
  }
}

variable "pw" {
  type      = string
  sensitive = true
  validation {
    condition     = length(var.pw) > 1000
    error_message = "The password ${var.pw} is too short."
  }
}

output "port" {
  value     = var.port
  sensitive = true
}
"""

# A file whose checksum is a sensitive output (its value is in the state only), and, on demand, a
# resource whose creation fails with a message quoting a sensitive variable and that checksum (the
# provider's error, printed as is).
ECHO_TF = SANDBOX_HEADER + """
variable "token" {
  type      = string
  sensitive = true
}

variable "fail" {
  type    = bool
  default = false
}

variable "salt" {
  type = string
}

# Known only once applied (it follows the sleep's id): the checksum is never printed by the launch.
resource "sandbox_sleep" "s" {
  duration_ms = 1
}

resource "sandbox_file" "f" {
  path    = "f.txt"
  content = "after ${sandbox_sleep.s.id} ${var.salt}"
}

resource "sandbox_failure" "echo" {
  count   = var.fail ? 1 : 0
  message = "refused token ${var.token} after ${sandbox_file.f.checksum}"
}

output "digest" {
  value     = sandbox_file.f.checksum
  sensitive = true
}

output "token" {
  value     = var.token
  sensitive = true
}
"""


def tricky(prefix: str) -> str:
    """A unique value with a quote, a backslash and a newline; each line unique on its own."""
    return f'{uniq(prefix)}"q\\b{uniq("x")}\n{uniq("L2")}'


def forms(value: str) -> set[str]:
    """The value raw, JSON-escaped and HCL-escaped, and each of its lines the same ways."""
    out = set()
    for v in {value, *value.splitlines()}:
        json_escaped = json.dumps(v)[1:-1]
        hcl = json_escaped.replace("${", "$${").replace("%{", "%%{")
        out |= {v, json_escaped, hcl}
    return out


def assert_absent(secrets: list[str], text: str, where: str) -> None:
    for secret in secrets:
        for form in forms(secret):
            assert form not in text, f"{form!r} (a form of a secret) is in {where}"


def console_pages(srv, key: tuple[str, str], paths: list[str]) -> str:
    """The console's pages at `paths` for a session of `key`, HTML entities decoded."""
    import requests

    session = requests.Session()
    session.trust_env = False
    base = f"http://{srv.endpoint}"
    r = session.post(f"{base}/console/sign-in", data={"access_key_id": key[0], "access_key_secret": key[1]},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 303, r.text
    pages = []
    for path in paths:
        r = session.get(base + path, timeout=30)
        assert r.status_code == 200, (path, r.status_code)
        pages.append(html.unescape(r.text))
    return "\n".join(pages)


def database_text(srv) -> str:
    """Everything the database holds: SQLite's files as bytes (WAL too), or every row of every
    PostgreSQL table as psql prints it unaligned (values verbatim)."""
    if srv.database is None:
        return b"".join(p.read_bytes() for p in sorted(srv.data_dir.glob("servicecatalog.db*"))).decode("utf-8", "replace")
    tables = subprocess.run(
        ["psql", "-X", "-A", "-t", srv.database, "-c",
         "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"],
        check=True, capture_output=True, text=True, timeout=60).stdout.split()
    assert "task_logs" in tables and "plans" in tables, tables
    dump = []
    for table in tables:
        dump.append(subprocess.run(["psql", "-X", "-A", "-t", srv.database, "-c", f'SELECT * FROM "{table}"'],
                                   check=True, capture_output=True, text=True, timeout=60).stdout)
    return "\n".join(dump)


def test_secrets_printed_by_terraform_or_a_provider_are_masked_everywhere(fresh_server):
    srv = fresh_server()
    admin = srv.caller("v3")
    admin_raw = srv.caller("raw-v3")
    owner, owner_c, owner_raw = new_user(srv)
    approver, approver_c, approver_raw = new_user(srv)
    secrets: list[str] = []
    answers: list[str] = []
    tasks: list[str] = []

    def keep(value: str) -> str:
        secrets.append(value)
        return value

    # 1. Launches and a launch plan's preview that Terraform refuses, quoting the values.
    invalid = make_product(admin, INVALID_TF, users=[owner])
    port, pw = keep(tricky("port-")), keep(tricky("pw-"))
    pp_invalid, task_id = launch(owner_c, invalid, {"port": port, "pw": pw})
    task = wait_task(owner_c, task_id)
    assert task["Status"] == "Failed", task
    assert "Invalid value for variable" in task["StatusMessage"] and MASK in task["StatusMessage"], task["StatusMessage"]
    assert MASK in terraform_logs(task, "plan")
    assert get_pp(owner_c, pp_invalid)["Status"] == "Error"
    tasks.append(task_id)
    plan_port, plan_pw = keep(tricky("plan-port-")), keep(tricky("plan-pw-"))
    failed_plan, _ = create_plan(owner_c, invalid, params={"port": plan_port, "pw": plan_pw})
    failed = wait_plan(owner_c, failed_plan)
    assert failed["PlanDetail"]["Status"] == "PreviewFailed", failed
    assert MASK in failed["PlanDetail"]["StatusMessage"], failed["PlanDetail"]

    # 2. A launch that succeeds: sensitive outputs masked; their values known from the state next time.
    echo = make_product(admin, ECHO_TF, users=[owner])
    approval_id = admin.call("CreateConstraint", {
        "PortfolioId": echo.portfolio_id, "ProductId": echo.product_id, "ConstraintType": "Approval",
        "Config": json.dumps({"OperationTypes": ["UpdateProvisionedProduct"],
                              "Approvers": [{"Type": "RamUser", "Id": approver["PrincipalId"]}]})})["ConstraintId"]
    token = keep(tricky("token-"))
    salt = uniq("salt-")
    pp_echo, task_id = launch(owner_c, echo, {"token": token, "salt": salt})
    task = wait_task(owner_c, task_id)
    assert task["Status"] == "Succeeded", task
    assert {k: o["OutputValue"] for k, o in outputs(task).items()} == {"digest": MASK, "token": MASK}
    tasks.append(task_id)
    keep(hashlib.sha256(f"after 1ms {salt}".encode()).hexdigest())

    # 3. An update through a plan the approver approves; its apply fails on the provider's error,
    # which quotes the new token and the checksum (a sensitive output of the current state).
    token2 = keep(tricky("token2-"))
    plan_id, _ = create_plan(owner_c, echo, "UpdateProvisionedProduct", {"token": token2, "fail": "true", "salt": salt},
                             name=get_pp(owner_c, pp_echo)["ProvisionedProductName"])
    previewed = wait_plan(owner_c, plan_id)
    assert previewed["PlanDetail"]["Status"] == "ApplicationInProgress", previewed
    answers.append(json.dumps(approver_raw.call("GetProvisionedProductPlan", {"PlanId": plan_id})))
    approver_c.call("ApproveProvisionedProductPlan", {"PlanId": plan_id, "ApprovalAction": "Approve"})
    task_id = execute(owner_raw, plan_id)
    task = wait_task(owner_c, task_id)
    assert task["Status"] == "Failed", task
    assert f"refused token {MASK}" in task["StatusMessage"] and f"after {MASK}" in task["StatusMessage"], task["StatusMessage"]
    tasks.append(task_id)

    # 4. The same failure through a direct update, the approval lifted: the checksum is now in the
    # state saved by the failed apply.
    admin.call("DeleteConstraint", {"ConstraintId": approval_id})
    token3 = keep(tricky("token3-"))
    task = wait_task(owner_c, update(owner_c, pp_echo, echo, {"token": token3, "fail": "true", "salt": salt}))
    assert task["Status"] == "Failed" and f"refused token {MASK}" in task["StatusMessage"], task
    tasks.append(task["TaskId"])

    # Every answer involved, as the owner, the approver and the administrator read them.
    for task_id in tasks:
        answers.append(json.dumps(owner_raw.call("GetTask", {"TaskId": task_id})))
        answers.append(json.dumps(admin_raw.call("GetTask", {"TaskId": task_id})))
        answers.append(json.dumps(full_task_log(owner_raw, task_id)))
    for pp_id in (pp_invalid, pp_echo):
        answers.append(json.dumps(owner_raw.call("GetProvisionedProduct", {"ProvisionedProductId": pp_id})))
        answers.append(json.dumps(owner_raw.call("ListTasks", {"ProvisionedProductId": pp_id, "PageNumber": 1,
                                                               "PageSize": 100})))
    answers.append(json.dumps(owner_raw.call("ListProvisionedProducts", {"PageSize": 100})))
    answers.append(json.dumps(admin_raw.call("ListProvisionedProducts", {"PageSize": 100, "AccessLevelFilter": "Account"})))
    for plan in (failed_plan, plan_id):
        answers.append(json.dumps(owner_raw.call("GetProvisionedProductPlan", {"PlanId": plan})))
    answers.append(json.dumps(approver_raw.call("GetProvisionedProductPlan", {"PlanId": plan_id})))
    answers.append(json.dumps(owner_raw.call("ListProvisionedProductPlans", {"PageSize": 100})))
    answers.append(json.dumps(approver_raw.call("ListProvisionedProductPlans", {"PageSize": 100, "ApprovalFilter": "ApprovalHistory"})))
    answers.append(json.dumps(admin_raw.call("ListAuditEvents", {"PageSize": 100})))
    answers.append(console_pages(srv, (owner["AccessKeyId"], owner["AccessKeySecret"]),
                                 [f"/console/tasks/{t}" for t in tasks] + [f"/console/tasks/{t}/log" for t in tasks]
                                 + [f"/console/provisioned/{pp_invalid}", f"/console/provisioned/{pp_echo}",
                                    f"/console/plans/{failed_plan}", f"/console/plans/{plan_id}"]))
    answers.append(console_pages(srv, (approver["AccessKeyId"], approver["AccessKeySecret"]), [f"/console/plans/{plan_id}"]))
    text = "\n".join(answers)
    assert MASK in text and "refused token" in text, "the answers hold the masked errors"
    assert_absent(secrets, text, "an answer")

    srv.stop()
    assert_absent(secrets, srv.log_path.read_text(errors="replace"), "the server's log")
    stored = database_text(srv)
    assert "refused token" in stored, "the database holds the masked errors"
    assert_absent(secrets, stored, "the database")
