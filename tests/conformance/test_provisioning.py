"""The provisioning engine through the official SDK against the real binary and a real `terraform`:
launch, update, terminate, task details and logs, failures (validation, partial apply, timeout,
crash of the server), ownership and parameter checks.

Catalogs are built in the tests (CreateTemplate / CreateProduct / AssociateProductWithPortfolio /
AssociatePrincipalWithPortfolio), except where the sample catalog (`--sample-catalog`) is the
subject. Tasks are awaited by bounded polling; nothing asserts how fast Terraform runs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import sclib
from sclib import expect_error, parse_time, uniq

REGION = "cn-hangzhou"
MASK = "******"
# Generous: a task runs version/init/plan/apply of a tiny template; CI machines can be slow.
TASK_DEADLINE = float(os.environ.get("SERVICECATALOG_TEST_TASK_DEADLINE", "120"))
ARN_RE = re.compile(r"^acs:servicecatalog:[a-z0-9-]+:[^:]+:provisionedproduct/(?P<id>.+)$")

SANDBOX_SOURCE = "servicecatalog.local/demo/sandbox"
SANDBOX_HEADER = f"""
terraform {{
  required_providers {{
    sandbox = {{
      source  = "{SANDBOX_SOURCE}"
      version = "0.1.0"
    }}
  }}
}}

provider "sandbox" {{}}
"""


def _terraform_binary() -> str | None:
    path = os.pathsep.join([str(sclib.TOOLS_BIN), os.environ.get("PATH", "")])
    return shutil.which("terraform", path=path) or shutil.which("tofu", path=path)


PROVIDER_BINARY = sclib.server_binary().parent / "terraform-provider-sandbox"
needs_terraform = pytest.mark.skipif(
    _terraform_binary() is None, reason="no terraform (or tofu) binary on PATH: the engine cannot run tasks")
needs_provider = pytest.mark.skipif(
    not PROVIDER_BINARY.is_file(),
    reason=f"sandbox provider not built next to the server ({PROVIDER_BINARY}): "
           "run `cargo build --release --workspace`")


# ----------------------------------------------------------------------------- templates

HELLO_TF = """
variable "name" {
  type        = string
  default     = "world"
  description = "Whom to greet."
}

variable "times" {
  type        = number
  default     = 1
  description = "How many greetings."
}

variable "size" {
  type    = string
  default = "small"
}

variable "owner" {
  type        = string
  description = "Required: no default."
}

output "greeting" {
  description = "The greeting, repeated."
  value       = join(" ", [for i in range(var.times) : "Hello, ${var.name}!"])
}

output "owner_size" {
  description = "Owner and size."
  value       = "${var.owner}/${var.size}"
}
"""

SECRET_TF = """
variable "name" {
  type    = string
  default = "plain"
}

variable "password" {
  type      = string
  sensitive = true
}

output "secret" {
  description = "Derived from the password."
  value       = "s-${var.password}"
  sensitive   = true
}

output "plain" {
  description = "Not secret."
  value       = "p-${var.name}"
}
"""

# A file, then a sleep that depends on it: the apply is slow, and the file is in the state
# (written by Terraform after each resource) before the sleep starts.
SLOW_TF = SANDBOX_HEADER + """
variable "label" {
  type    = string
  default = "a"
}

variable "duration_ms" {
  type    = number
  default = 5000
}

resource "sandbox_file" "first" {
  path    = "slow/first.txt"
  content = "made before the sleep (${var.label})"
}

resource "sandbox_sleep" "slow" {
  duration_ms = var.duration_ms
  depends_on  = [sandbox_file.first]
}

output "label" {
  description = "The label."
  value       = var.label
}
"""

FILE_TF = SANDBOX_HEADER + """
variable "dir" {
  type    = string
  default = "one"
}

variable "content" {
  type    = string
  default = "hello"
}

resource "sandbox_file" "page" {
  path    = "${var.dir}/page.txt"
  content = var.content
}

output "page" {
  description = "Path of the page."
  value       = sandbox_file.page.id
}
"""

PARTIAL_TF = SANDBOX_HEADER + """
resource "sandbox_file" "kept" {
  path    = "partial/kept.txt"
  content = "created before the failure"
}

resource "sandbox_failure" "boom" {
  message    = "boom-partial-apply-failure"
  depends_on = [sandbox_file.kept]
}
"""


def tf_body(main_tf: str, transform: str = "Aliyun::Terraform-v1.0", **extra) -> str:
    body = {"ROSTemplateFormatVersion": "2015-09-01", "Transform": transform,
            "Workspace": {"main.tf": main_tf}}
    body.update(extra)
    return json.dumps(body)


@dataclass
class Product:
    product_id: str
    version_id: str
    portfolio_id: str


def create_portfolio(admin) -> str:
    return admin.call("CreatePortfolio", {"PortfolioName": uniq("pf-"), "ProviderName": "conformance"})["PortfolioId"]


def grant(admin, portfolio_id: str, user: dict | None = None, pattern: str | None = None) -> None:
    params = {"PortfolioId": portfolio_id, "PrincipalType": "RamUser"}
    if user is not None:
        params["PrincipalId"] = user["PrincipalId"]
    else:
        params["PrincipalPattern"] = pattern
    admin.call("AssociatePrincipalWithPortfolio", params)


def make_product(admin, main_tf: str, users=(), pattern: str | None = None, portfolio_id: str | None = None,
                 **body_extra) -> Product:
    """A product with one version of `main_tf` in a portfolio (new unless given) granted to `users`."""
    url = admin.call("CreateTemplate", {"TemplateType": "RosTerraformTemplate",
                                        "TemplateBody": tf_body(main_tf, **body_extra)})["TemplateUrl"]
    r = admin.call("CreateProduct", {
        "ProductName": uniq("prod-"), "ProviderName": "conformance", "ProductType": "Ros",
        "TemplateType": "RosTerraformTemplate",
        "ProductVersionParameters": {"ProductVersionName": "v1", "TemplateUrl": url,
                                     "TemplateType": "RosTerraformTemplate"}})
    portfolio_id = portfolio_id or create_portfolio(admin)
    admin.call("AssociateProductWithPortfolio", {"ProductId": r["ProductId"], "PortfolioId": portfolio_id})
    for user in users:
        grant(admin, portfolio_id, user=user)
    if pattern:
        grant(admin, portfolio_id, pattern=pattern)
    return Product(r["ProductId"], r["ProductVersionId"], portfolio_id)


# ----------------------------------------------------------------------------- calls


def kv(params: dict | None) -> list[dict]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in (params or {}).items()]


def get_pp(caller, pp_id: str) -> dict:
    return caller.call("GetProvisionedProduct", {"ProvisionedProductId": pp_id})["ProvisionedProductDetail"]


def get_task(caller, task_id: str) -> dict:
    return caller.call("GetTask", {"TaskId": task_id})["TaskDetail"]


def launch(caller, product: Product, params: dict | None = None, name: str | None = None,
           portfolio: bool = False, **extra) -> tuple[str, str]:
    """LaunchProduct through the SDK -> (provisioned product id, its launch task id)."""
    req = {"ProductId": product.product_id, "ProductVersionId": product.version_id,
           "ProvisionedProductName": name or uniq("pp-"), "StackRegionId": REGION, "Parameters": kv(params)}
    if portfolio:
        req["PortfolioId"] = product.portfolio_id
    req.update(extra)
    pp_id = caller.call("LaunchProduct", req)["ProvisionedProductId"]
    return pp_id, get_pp(caller, pp_id)["LastTaskId"]


def launched_product(admin, end_user, main_tf: str, params: dict | None = None, **launch_kw) -> tuple:
    """The end user's launch of a new product of `main_tf` granted to them, once succeeded
    -> (their SDK caller, the product, the provisioned product's id, the launch task's id)."""
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin, main_tf, users=[user])
    pp_id, task_id = launch(caller, product, params, **launch_kw)
    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    return caller, product, pp_id, task_id


def update(caller, pp_id: str, product: Product, params: dict | None = None, **extra) -> str:
    """UpdateProvisionedProduct through the SDK -> the update task's id."""
    req = {"ProvisionedProductId": pp_id, "ProductId": product.product_id,
           "ProductVersionId": product.version_id, "Parameters": kv(params)}
    req.update(extra)
    r = caller.call("UpdateProvisionedProduct", req)
    assert r["ProvisionedProductId"] == pp_id
    return get_pp(caller, pp_id)["LastTaskId"]


def terminate(caller, pp_id: str) -> str:
    """TerminateProvisionedProduct through the SDK -> the terminate task's id (from ListTasks)."""
    caller.call("TerminateProvisionedProduct", {"ProvisionedProductId": pp_id})
    tasks = caller.call("ListTasks", {"ProvisionedProductId": pp_id, "SortBy": "CreateTime", "SortOrder": "Desc",
                                      "PageNumber": 1, "PageSize": 100})["TaskDetails"]
    ids = [t["TaskId"] for t in tasks if t["TaskType"] == "TerminateProvisionedProduct"]
    assert ids, f"no TerminateProvisionedProduct task listed: {tasks}"
    return ids[0]


def wait_task(caller, task_id: str, deadline: float = TASK_DEADLINE) -> dict:
    """Polls GetTask until the task leaves InProgress (bounded)."""
    end = time.monotonic() + deadline
    while True:
        task = get_task(caller, task_id)
        if task["Status"] != "InProgress":
            return task
        if time.monotonic() > end:
            raise AssertionError(f"task {task_id} still InProgress after {deadline}s: {task}")
        time.sleep(0.1)


def wait_pp_gone(caller, pp_id: str, deadline: float = TASK_DEADLINE) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            get_pp(caller, pp_id)
        except sclib.ApiError as e:
            assert (e.status, e.code) == (404, "EntityNotExists.ProvisionedProduct"), e
            return
        if time.monotonic() > end:
            raise AssertionError(f"provisioned product {pp_id} still readable after {deadline}s")
        time.sleep(0.1)


def terraform_logs(task: dict, command: str | None = None) -> str:
    logs = (task.get("Log") or {}).get("TerraformLogs") or []
    return "".join(entry.get("Content", "") for entry in logs if command is None or entry["Command"] == command)


def commands(task: dict) -> list[str]:
    return [entry["Command"] for entry in (task.get("Log") or {}).get("TerraformLogs") or []]


def outputs(task: dict) -> dict:
    return {o["OutputKey"]: o for o in task.get("Outputs") or []}


def parameters(task: dict) -> dict:
    return {p["ParameterKey"]: p["ParameterValue"] for p in task.get("Parameters") or []}


def task_log(raw, task_id: str, after: int = 0, wait: int = 0) -> dict:
    return raw.call("GetTaskLog", {"TaskId": task_id, "AfterSeq": after, "WaitSeconds": wait})


def wait_apply_sleeping(raw, task_id: str) -> None:
    """Follows the task's log until its apply is inside the slow sleep (bounded)."""
    after, text = 0, ""
    end = time.monotonic() + TASK_DEADLINE
    while "sandbox_sleep.slow: Creating..." not in text:
        r = task_log(raw, task_id, after, wait=5)
        after = r["NextSeq"]
        text += "".join(c["Content"] for c in r["Chunks"] if c["Command"] == "apply")
        assert not r["Finished"], f"task {task_id} finished before its sleep: {r}"
        assert time.monotonic() < end, f"the slow apply of {task_id} never started"


def full_task_log(raw, task_id: str, after: int = 0, deadline: float = TASK_DEADLINE) -> list[dict]:
    """The chunks of a task's log after `after` through GetTaskLog, following NextSeq until Finished."""
    chunks = []
    end = time.monotonic() + deadline
    while True:
        r = task_log(raw, task_id, after, wait=5)
        chunks += r["Chunks"]
        assert r["NextSeq"] >= after
        after = r["NextSeq"]
        if r["Finished"]:
            return chunks
        assert time.monotonic() < end, f"log of {task_id} not finished after {deadline}s"


def list_pp_ids(caller, **extra) -> set[str]:
    r = caller.call("ListProvisionedProducts", {"PageSize": 100, **extra})
    assert r["TotalCount"] <= 100, "more provisioned products than one page: the test needs paging"
    return {d["ProvisionedProductId"] for d in r.get("ProvisionedProductDetails") or []}


def owned_in_account(admin, principal_id: str) -> set[str]:
    """Ids of one owner's provisioned products, as the administrator's Account view lists them (all pages)."""
    found, page = set(), 1
    while True:
        r = admin.call("ListProvisionedProducts", {"AccessLevelFilter": "Account", "PageSize": 100, "PageNumber": page})
        details = r.get("ProvisionedProductDetails") or []
        found |= {d["ProvisionedProductId"] for d in details if d["OwnerPrincipalId"] == principal_id}
        if page * 100 >= r["TotalCount"] or not details:
            return found
        page += 1


def sandbox_files(srv, pp_id: str) -> dict[str, str]:
    """The regular files under the provisioned product's sandbox, relative path -> content."""
    root = srv.data_dir / "sandbox" / pp_id
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def user_pair(server, make_user):
    """Two end users: (info, SDK caller, raw caller) each."""
    out = []
    for _ in range(2):
        info = make_user()
        key = (info["AccessKeyId"], info["AccessKeySecret"])
        out.append((info, server.caller("v3", key), server.caller("raw-v3", key)))
    return out


@pytest.fixture(scope="module")
def sample_server(server_factory):
    """A server with the sample catalog (granted to every user)."""
    return server_factory(args=["--sample-catalog"])


def sample_product(srv, user_caller, name: str) -> Product:
    summaries = user_caller.call("ListProductsAsEndUser", {"PageSize": 100})["ProductSummaries"]
    product_id = next(p["ProductId"] for p in summaries if p["ProductName"] == name)
    admin = srv.caller("v3")
    versions = admin.call("ListProductVersions", {"ProductId": product_id})["ProductVersionDetails"]
    launch_options = user_caller.call("ListLaunchOptions", {"ProductId": product_id}).get("LaunchOptionSummaries") or []
    portfolio_id = launch_options[0]["PortfolioId"] if launch_options else ""
    return Product(product_id, versions[0]["ProductVersionId"], portfolio_id)


def new_user(srv):
    info = srv.create_user()
    key = (info["AccessKeyId"], info["AccessKeySecret"])
    return info, srv.caller("v3", key), srv.caller("raw-v3", key)


def user_product(srv, main_tf: str, **product_kw) -> tuple:
    """A new user of `srv` and a new product of `main_tf` granted to them
    -> (their SDK caller, their raw caller, the product)."""
    user, caller, raw = new_user(srv)
    return caller, raw, make_product(srv.caller("v3"), main_tf, users=[user], **product_kw)


# ============================================================================= 1. launch


@needs_terraform
def test_launch_succeeds_with_outputs_parameters_tags_and_logs(server, admin_v3, end_user):
    user, caller_of = end_user
    caller, raw = caller_of("v3"), caller_of("raw-v3")
    product = make_product(admin_v3, HELLO_TF, users=[user])
    # tag options of the product and of the portfolio join the caller's tags
    product_tag = admin_v3.call("CreateTagOption", {"Key": uniq("cost-"), "Value": "product-level"})["TagOptionDetail"]
    portfolio_tag = admin_v3.call("CreateTagOption", {"Key": uniq("env-"), "Value": "portfolio-level"})["TagOptionDetail"]
    admin_v3.call("AssociateTagOptionWithResource", {"ResourceId": product.product_id,
                                                      "TagOptionId": product_tag["TagOptionId"]})
    admin_v3.call("AssociateTagOptionWithResource", {"ResourceId": product.portfolio_id,
                                                      "TagOptionId": portfolio_tag["TagOptionId"]})
    name = uniq("hello-")
    before = list_pp_ids(caller)
    pp_id, task_id = launch(caller, product, {"name": "Ada", "times": "2", "owner": "team-a"}, name=name,
                            Tags=[{"Key": "team", "Value": "blue"}])
    assert pp_id and pp_id not in before and task_id

    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    assert "StatusMessage" not in task or not task["StatusMessage"]
    assert task["TaskId"] == task_id and task["TaskType"] == "LaunchProduct"
    assert task["ProvisionedProductId"] == pp_id and task["ProvisionedProductName"] == name
    assert task["ProductId"] == product.product_id and task["ProductVersionId"] == product.version_id
    assert task["PortfolioId"] == product.portfolio_id
    assert parse_time(task["CreateTime"]) <= parse_time(task["UpdateTime"])
    assert parameters(task) == {"name": "Ada", "times": "2", "owner": "team-a"}
    outs = outputs(task)
    assert outs["greeting"] == {"OutputKey": "greeting", "OutputValue": "Hello, Ada! Hello, Ada!",
                                "Description": "The greeting, repeated."}
    assert outs["owner_size"]["OutputValue"] == "team-a/small"
    assert outs["owner_size"]["Description"] == "Owner and size."
    tags = {t["Key"]: t["Value"] for t in task["TaskTags"]}
    assert tags == {"team": "blue", product_tag["Key"]: "product-level", portfolio_tag["Key"]: "portfolio-level"}

    cmds = commands(task)
    for command in ("version", "init", "plan", "apply"):
        assert command in cmds, f"no {command} log in {cmds}"
    assert cmds.index("version") < cmds.index("init") < cmds.index("plan") < cmds.index("apply")
    assert "destroy" not in cmds
    assert "Terraform v" in terraform_logs(task, "version")
    assert "Apply complete!" in terraform_logs(task, "apply")
    # the Stream field (dropped by the SDK model) says which stream the text came from
    raw_task = raw.call("GetTask", {"TaskId": task_id})["TaskDetail"]
    apply_out = [e for e in raw_task["Log"]["TerraformLogs"] if e["Command"] == "apply" and e["Stream"] == "stdout"]
    assert apply_out and "Apply complete!" in apply_out[0]["Content"]
    assert {e["Stream"] for e in raw_task["Log"]["TerraformLogs"]} <= {"stdout", "stderr"}

    pp = get_pp(caller, pp_id)
    assert pp["Status"] == "Available" and not pp.get("StatusMessage")
    assert pp["ProvisionedProductId"] == pp_id and pp["ProvisionedProductName"] == name
    assert pp["LastTaskId"] == pp["LastProvisioningTaskId"] == pp["LastSuccessfulProvisioningTaskId"] == task_id
    assert pp["OwnerPrincipalId"] == user["PrincipalId"]
    assert pp["OwnerPrincipalType"] == user["PrincipalType"]
    assert pp["ProvisionedProductType"] == "RosStack"
    m = ARN_RE.match(pp["ProvisionedProductArn"])
    assert m and m.group("id") == pp_id, pp["ProvisionedProductArn"]
    assert pp["StackRegionId"] == REGION and pp["StackId"]
    assert pp["ProductId"] == product.product_id and pp["ProductVersionId"] == product.version_id
    assert pp["PortfolioId"] == product.portfolio_id and pp["ProductVersionName"] == "v1"
    parse_time(pp["CreateTime"])

    # the task's working directory (variables, plan, state) does not outlive it
    assert not (server.data_dir / "work" / task_id).exists()

    assert pp_id in list_pp_ids(caller)
    listed = caller.call("ListTasks", {"ProvisionedProductId": pp_id, "PageNumber": 1, "PageSize": 10})
    assert listed["TotalCount"] == 1 and listed["TaskDetails"][0]["TaskId"] == task_id
    assert listed["TaskDetails"][0]["Status"] == "Succeeded"
    # ListTasks carries each task's log, as GetTask does (the vendor's TaskDetails schema)
    assert listed["TaskDetails"][0]["Log"] == get_task(caller, task_id)["Log"]
    assert "init" in [entry["Command"] for entry in listed["TaskDetails"][0]["Log"]["TerraformLogs"]]
    # the administrator sees it too
    assert get_pp(admin_v3, pp_id)["Status"] == "Available"
    assert get_task(admin_v3, task_id)["Status"] == "Succeeded"


# ============================================================================= 2. update


@needs_terraform
def test_update_changes_outputs_and_a_no_op_update_is_refused(server, admin_v3, end_user):
    caller, product, pp_id, launch_task = launched_product(admin_v3, end_user, HELLO_TF, {"name": "Ada", "owner": "o"})

    expect_error(400, "InvalidParameter.Parameters", update, caller, pp_id, product, {"name": "Ada"})
    expect_error(400, "InvalidParameter.Parameters", update, caller, pp_id, product)
    pp = get_pp(caller, pp_id)
    assert pp["Status"] == "Available" and pp["LastTaskId"] == launch_task

    update_task = update(caller, pp_id, product, {"name": "Grace", "times": "3"})
    assert update_task != launch_task
    task = wait_task(caller, update_task)
    assert task["Status"] == "Succeeded", task
    assert task["TaskType"] == "UpdateProvisionedProduct"
    # parameters not given keep their previous values
    assert parameters(task) == {"name": "Grace", "times": "3", "owner": "o"}
    assert outputs(task)["greeting"]["OutputValue"] == "Hello, Grace! Hello, Grace! Hello, Grace!"
    assert outputs(task)["greeting"]["Description"] == "The greeting, repeated."
    assert "Apply complete!" in terraform_logs(task, "apply")
    pp = get_pp(caller, pp_id)
    assert pp["Status"] == "Available"
    assert pp["LastTaskId"] == pp["LastProvisioningTaskId"] == pp["LastSuccessfulProvisioningTaskId"] == update_task
    listed = caller.call("ListTasks", {"ProvisionedProductId": pp_id, "SortBy": "CreateTime", "SortOrder": "Asc",
                                       "PageNumber": 1, "PageSize": 10})
    assert [t["TaskId"] for t in listed["TaskDetails"]] == [launch_task, update_task]
    # the same values again: nothing to do
    expect_error(400, "InvalidParameter.Parameters", update, caller, pp_id, product, {"name": "Grace"})
    # ListTasks without paging parameters: PageNumber 1, PageSize 10 (SEMANTICS), newest first by default
    listed = caller.call("ListTasks", {"ProvisionedProductId": pp_id})
    assert (listed["PageNumber"], listed["PageSize"], listed["TotalCount"]) == (1, 10, 2)
    assert {t["TaskId"] for t in listed["TaskDetails"]} == {launch_task, update_task}


# ============================================================================= 2 + 9. running task


@needs_terraform
@needs_provider
def test_a_running_task_holds_its_product_and_streams_its_log(server, admin_v3, end_user):
    user, caller_of = end_user
    caller, raw = caller_of("v3"), caller_of("raw-v3")
    product = make_product(admin_v3, SLOW_TF, users=[user])
    pp_id, task_id = launch(caller, product, {"duration_ms": "6000"})

    # follow the log while the task runs: init and plan output arrive before the task ends
    seen, after, live = [], 0, None
    end = time.monotonic() + TASK_DEADLINE
    while True:
        r = task_log(raw, task_id, after, wait=10)
        assert r["TaskId"] == task_id
        assert all(c["Seq"] > after for c in r["Chunks"])
        assert r["NextSeq"] == (r["Chunks"][-1]["Seq"] if r["Chunks"] else after)
        seen += r["Chunks"]
        after = r["NextSeq"]
        text = "".join(c["Content"] for c in seen if c["Command"] == "apply")
        if "sandbox_sleep.slow: Creating..." in text:
            live = r
            break
        assert not r["Finished"], f"the task ended before its slow apply was seen: {r}"
        assert time.monotonic() < end, "the apply never started"
    assert live["Status"] == "InProgress" and live["Finished"] is False
    assert {"init", "plan"} <= {c["Command"] for c in seen}
    assert "Plan: 2 to add" in "".join(c["Content"] for c in seen if c["Command"] == "plan")

    # GetTask shows the partial log while InProgress
    running = get_task(caller, task_id)
    assert running["Status"] == "InProgress", "the 6 s sleep ended before GetTask: raise duration_ms"
    assert {"version", "init", "plan", "apply"} <= set(commands(running))
    assert "Apply complete!" not in terraform_logs(running)
    assert "StatusMessage" not in running or not running["StatusMessage"]

    # the product is UnderChange: no update, no terminate
    pp = get_pp(caller, pp_id)
    assert pp["Status"] == "UnderChange" and pp["LastTaskId"] == task_id
    assert not pp.get("LastSuccessfulProvisioningTaskId")
    expect_error(409, "InvalidStatus.ProvisionedProduct", update, caller, pp_id, product, {"label": "b"})
    expect_error(409, "InvalidStatus.ProvisionedProduct", caller.call, "TerminateProvisionedProduct",
                 {"ProvisionedProductId": pp_id})
    assert get_task(caller, task_id)["Status"] == "InProgress", "the refusals must hold: the task was still running"

    # the rest of the log, then the end
    rest = full_task_log(raw, task_id, after)
    full = seen + rest
    assert [c["Seq"] for c in full] == sorted({c["Seq"] for c in full}), "chunks repeated or out of order"
    assert "Apply complete! Resources: 2 added" in "".join(c["Content"] for c in full if c["Command"] == "apply")
    done = wait_task(caller, task_id)
    assert done["Status"] == "Succeeded", done
    last = task_log(raw, task_id, after=0)
    assert last["Finished"] is True and last["Status"] == "Succeeded"
    assert task_log(raw, task_id, after=last["NextSeq"])["Chunks"] == []
    assert get_pp(caller, pp_id)["Status"] == "Available"
    # now the update goes through
    assert wait_task(caller, update(caller, pp_id, product, {"label": "b", "duration_ms": "0"}))["Status"] == "Succeeded"
    assert wait_task(caller, terminate(caller, pp_id))["Status"] == "Succeeded"


# ============================================================================= 3. validation failure


@needs_terraform
def test_a_validation_failure_fails_the_task_and_an_update_repairs_it(sample_server):
    _, caller, _ = new_user(sample_server)
    hello = sample_product(sample_server, caller, "Hello outputs")
    pp_id, task_id = launch(caller, hello, {"repeat": "20"})
    task = wait_task(caller, task_id)
    assert task["Status"] == "Failed", task
    assert "The repeat value must be between 1 and 10." in task["StatusMessage"], task["StatusMessage"]
    assert "Invalid value for variable" in task["StatusMessage"]
    assert outputs(task) == {}
    assert "apply" not in commands(task)
    pp = get_pp(caller, pp_id)
    assert pp["Status"] == "Error"
    assert "The repeat value must be between 1 and 10." in pp["StatusMessage"]
    assert pp["LastTaskId"] == pp["LastProvisioningTaskId"] == task_id
    assert not pp.get("LastSuccessfulProvisioningTaskId")

    fix = update(caller, pp_id, hello, {"repeat": "2"})
    fixed = wait_task(caller, fix)
    assert fixed["Status"] == "Succeeded", fixed
    assert outputs(fixed)["greeting"]["OutputValue"] == "Hello, world! Hello, world!"
    assert outputs(fixed)["greeting"]["Description"] == "The greeting, repeated."
    pp = get_pp(caller, pp_id)
    assert pp["Status"] == "Available" and not pp.get("StatusMessage")
    assert pp["LastSuccessfulProvisioningTaskId"] == fix


@needs_terraform
def test_a_product_whose_launch_failed_validation_can_be_terminated(sample_server):
    """Nothing was created; the owner removes the failed product instead of repairing it."""
    _, caller, _ = new_user(sample_server)
    hello = sample_product(sample_server, caller, "Hello outputs")
    pp_id, task_id = launch(caller, hello, {"repeat": "20"})
    assert wait_task(caller, task_id)["Status"] == "Failed"
    ended = wait_task(caller, terminate(caller, pp_id))
    assert ended["Status"] == "Succeeded", ended.get("StatusMessage")
    expect_error(404, "EntityNotExists.ProvisionedProduct", get_pp, caller, pp_id)
    assert pp_id not in list_pp_ids(caller)


# ============================================================================= 4 + 5. website lifecycle


@needs_terraform
@needs_provider
def test_static_website_creates_updates_in_place_and_terminate_destroys(sample_server):
    me, caller, _ = new_user(sample_server)
    web = sample_product(sample_server, caller, "Static website")
    pp_id, task_id = launch(caller, web, {"title": "Conformance", "message": "first message"})
    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    assert "Apply complete! Resources: 3 added" in terraform_logs(task, "apply")
    files = sandbox_files(sample_server, pp_id)
    assert set(files) == {"site/index.html", "site/style.css", "site/about.html"}, files
    assert "first message" in files["site/index.html"] and "Conformance" in files["site/index.html"]
    outs = outputs(task)
    assert outs["index_path"]["OutputValue"] == "site/index.html"
    assert len(outs["index_checksum"]["OutputValue"]) == 64

    changed = wait_task(caller, update(caller, pp_id, web, {"message": "second message"}))
    assert changed["Status"] == "Succeeded", changed
    assert "Resources: 0 added, 1 changed, 0 destroyed" in terraform_logs(changed, "apply")
    assert "must be replaced" not in terraform_logs(changed, "plan")
    after = sandbox_files(sample_server, pp_id)
    assert "second message" in after["site/index.html"] and "first message" not in after["site/index.html"]
    assert after["site/style.css"] == files["site/style.css"] and after["site/about.html"] == files["site/about.html"]
    assert outputs(changed)["index_checksum"]["OutputValue"] != outs["index_checksum"]["OutputValue"]

    end_task = terminate(caller, pp_id)
    ended = wait_task(caller, end_task)
    assert ended["Status"] == "Succeeded", ended
    assert ended["TaskType"] == "TerminateProvisionedProduct"
    assert "destroy" in commands(ended) and "apply" not in commands(ended)
    assert "3 destroyed" in terraform_logs(ended, "destroy")
    expect_error(404, "EntityNotExists.ProvisionedProduct", get_pp, caller, pp_id)
    assert pp_id not in list_pp_ids(caller)
    assert owned_in_account(sample_server.caller("v3"), me["PrincipalId"]) == set()
    assert sandbox_files(sample_server, pp_id) == {}
    # a terminated product cannot be terminated or updated again
    expect_error(404, "EntityNotExists.ProvisionedProduct", caller.call, "TerminateProvisionedProduct",
                 {"ProvisionedProductId": pp_id})
    expect_error(404, "EntityNotExists.ProvisionedProduct", update, caller, pp_id, web, {"message": "x"})


@needs_terraform
def test_terminate_of_a_resourceless_product_runs_destroy(server, admin_v3, end_user):
    caller, _, pp_id, task_id = launched_product(admin_v3, end_user, HELLO_TF, {"owner": "o"})
    ended = wait_task(caller, terminate(caller, pp_id))
    assert ended["Status"] == "Succeeded", ended
    assert {"version", "init", "plan", "destroy"} <= set(commands(ended))
    assert outputs(ended) == {}
    wait_pp_gone(caller, pp_id)
    assert pp_id not in list_pp_ids(caller)
    assert pp_id not in owned_in_account(admin_v3, end_user[0]["PrincipalId"])
    # the tasks stay readable
    assert get_task(caller, task_id)["Status"] == "Succeeded"


@needs_terraform
@needs_provider
def test_changing_a_path_replaces_the_file(server, admin_v3, end_user):
    caller, product, pp_id, _ = launched_product(admin_v3, end_user, FILE_TF, {"dir": "one", "content": "c1"})
    assert sandbox_files(server, pp_id) == {"one/page.txt": "c1"}

    in_place = wait_task(caller, update(caller, pp_id, product, {"content": "c2"}))
    assert in_place["Status"] == "Succeeded", in_place
    assert "Resources: 0 added, 1 changed, 0 destroyed" in terraform_logs(in_place, "apply")
    assert sandbox_files(server, pp_id) == {"one/page.txt": "c2"}

    moved = wait_task(caller, update(caller, pp_id, product, {"dir": "two"}))
    assert moved["Status"] == "Succeeded", moved
    assert "must be replaced" in terraform_logs(moved, "plan")
    assert "Resources: 1 added, 0 changed, 1 destroyed" in terraform_logs(moved, "apply")
    assert sandbox_files(server, pp_id) == {"two/page.txt": "c2"}
    assert outputs(moved)["page"]["OutputValue"] == "two/page.txt"

    assert wait_task(caller, terminate(caller, pp_id))["Status"] == "Succeeded"
    assert sandbox_files(server, pp_id) == {}


# ============================================================================= 6. partial apply


@needs_terraform
@needs_provider
def test_a_partial_apply_keeps_its_state_and_terminate_removes_what_was_made(server, admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin_v3, PARTIAL_TF, users=[user])
    pp_id, task_id = launch(caller, product)
    task = wait_task(caller, task_id)
    assert task["Status"] == "Failed", task
    assert "boom-partial-apply-failure" in task["StatusMessage"], task["StatusMessage"]
    assert "apply" in commands(task)
    assert sandbox_files(server, pp_id) == {"partial/kept.txt": "created before the failure"}
    pp = get_pp(caller, pp_id)
    assert pp["Status"] == "Error" and "boom-partial-apply-failure" in pp["StatusMessage"]
    assert not pp.get("LastSuccessfulProvisioningTaskId")

    ended = wait_task(caller, terminate(caller, pp_id))
    assert ended["Status"] == "Succeeded", ended
    assert "1 destroyed" in terraform_logs(ended, "destroy")
    assert sandbox_files(server, pp_id) == {}
    expect_error(404, "EntityNotExists.ProvisionedProduct", get_pp, caller, pp_id)


# ============================================================================= 7. timeout


@needs_terraform
@needs_provider
def test_a_task_over_its_time_limit_fails_and_releases_the_product(fresh_server):
    srv = fresh_server(args=["--task-timeout", "3"])
    caller, _, product = user_product(srv, SLOW_TF)
    pp_id, task_id = launch(caller, product, {"duration_ms": "20000"})
    task = wait_task(caller, task_id, deadline=60)
    assert task["Status"] == "Failed", task
    assert "time limit" in task["StatusMessage"], task["StatusMessage"]
    # Terraform was interrupted in the middle of the 20 s sleep, not left to finish it
    applied = terraform_logs(task, "apply")
    assert "sandbox_sleep.slow: Creating..." in applied
    assert "sandbox_sleep.slow: Creation complete" not in applied, applied
    assert "Apply complete!" not in applied, applied
    pp = get_pp(caller, pp_id)
    assert pp["Status"] == "Error", pp
    assert "time limit" in pp["StatusMessage"]
    # the product is usable again: terminate cleans up what the interrupted apply made
    ended = wait_task(caller, terminate(caller, pp_id))
    assert ended["Status"] == "Succeeded", ended
    assert sandbox_files(srv, pp_id) == {}


# ============================================================================= 8. crash


@needs_terraform
@needs_provider
def test_a_task_interrupted_by_a_crash_fails_and_finished_work_survives(fresh_server):
    # one worker: a launch queued behind the slow one is still waiting when the server dies
    srv = fresh_server(args=["--lease-seconds", "3", "--workers", "1"])
    admin = srv.caller("v3")
    user, caller, raw = new_user(srv)
    files = make_product(admin, FILE_TF, users=[user])
    slow = make_product(admin, SLOW_TF, users=[user])
    hello = make_product(admin, HELLO_TF, users=[user])

    done_pp, done_task = launch(caller, files, {"dir": "kept", "content": "before the crash"})
    assert wait_task(caller, done_task)["Status"] == "Succeeded"

    pp_id, task_id = launch(caller, slow, {"duration_ms": "120000"})
    wait_apply_sleeping(raw, task_id)
    assert sandbox_files(srv, pp_id) == {"slow/first.txt": "made before the sleep (a)"}
    queued_pp, queued_task = launch(caller, hello, {"owner": "queued"})
    assert get_task(caller, queued_task)["Status"] == "InProgress"

    srv.restart(hard=True)
    admin = srv.caller("v3")
    key = (user["AccessKeyId"], user["AccessKeySecret"])
    caller = srv.caller("v3", key)

    task = wait_task(caller, task_id, deadline=60)
    assert task["Status"] == "Failed", task
    assert "interrupted" in task["StatusMessage"], task["StatusMessage"]
    pp = get_pp(caller, pp_id)
    assert pp["Status"] == "Error", pp
    assert "interrupted" in pp["StatusMessage"]
    assert not (srv.data_dir / "work" / task_id).exists()

    # the finished launch kept its state: an update modifies the file in place
    changed = wait_task(caller, update(caller, done_pp, files, {"content": "after the crash"}))
    assert changed["Status"] == "Succeeded", changed
    assert "Resources: 0 added, 1 changed, 0 destroyed" in terraform_logs(changed, "apply")
    assert sandbox_files(srv, done_pp) == {"kept/page.txt": "after the crash"}

    # the interrupted one can be terminated, and its state (salvaged) held the file made before the kill
    ended = wait_task(caller, terminate(caller, pp_id))
    assert ended["Status"] == "Succeeded", ended
    assert sandbox_files(srv, pp_id) == {}
    expect_error(404, "EntityNotExists.ProvisionedProduct", get_pp, caller, pp_id)

    # the launch that was only queued runs after the restart
    queued = wait_task(caller, queued_task)
    assert queued["Status"] == "Succeeded", queued
    assert outputs(queued)["owner_size"]["OutputValue"] == "queued/small"
    assert get_pp(caller, queued_pp)["Status"] == "Available"


# ============================================================================= logs are complete


@needs_terraform
def test_every_finished_task_has_its_complete_log(server, admin_v3, end_user):
    """Many short tasks at once: a task that Succeeded has the output of every command in its
    log, down to `Apply complete!` (the log is flushed in the background while Terraform runs;
    the end of it must not be lost when the task finishes)."""
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin_v3, HELLO_TF, users=[user])
    incomplete, total, versions = [], 0, set()
    for batch in range(3):
        launched = [launch(caller, product, {"owner": f"o{batch}-{i}"}) for i in range(12)]
        for i, (pp_id, task_id) in enumerate(launched):
            task = wait_task(caller, task_id)
            assert task["Status"] == "Succeeded", task
            assert outputs(task)["owner_size"]["OutputValue"] == f"o{batch}-{i}/small"
            total += 1
            versions.add(terraform_logs(task, "version"))
            if "Apply complete!" not in terraform_logs(task, "apply"):
                incomplete.append((task_id, commands(task)))
    assert not incomplete, f"{len(incomplete)} of {total} succeeded tasks lack the end of their log: {incomplete}"
    # `terraform version` runs once per binary: every task logs the same text
    assert len(versions) == 1 and next(iter(versions)).startswith(("Terraform v", "OpenTofu v")), versions



@needs_terraform
def test_terraform_version_runs_once_per_binary(fresh_server, tmp_path):
    """Before `init`, `terraform version` prints what the binary is: it runs for the first task
    and again only when the binary changes; every task's log has its text. (Unsandboxed: the
    wrapper counting the calls writes to the host and runs the real binary from where it is.)"""
    calls = tmp_path / "calls"
    wrapper = tmp_path / "terraform"
    wrapper.write_text(f'#!/bin/sh\necho "$1" >> "{calls}"\nexec "{_terraform_binary()}" "$@"\n')
    wrapper.chmod(0o755)
    srv = fresh_server(args=["--terraform", str(wrapper), "--workers", "1", "--task-isolation", "none"])
    caller, _, product = user_product(srv, HELLO_TF)

    def launch_logs(count):
        tasks = [wait_task(caller, launch(caller, product, {"owner": f"o{i}"})[1]) for i in range(count)]
        assert all(t["Status"] == "Succeeded" for t in tasks), tasks
        return [terraform_logs(t, "version") for t in tasks]

    first = launch_logs(3)
    assert calls.read_text().split().count("version") == 1, calls.read_text()
    assert first[0].startswith(("Terraform v", "OpenTofu v")) and first.count(first[0]) == 3, first
    # the same path, a different binary (here: the wrapper rewritten): the version runs again
    wrapper.write_text(wrapper.read_text() + "# changed\n")
    assert launch_logs(1) == first[:1]
    assert calls.read_text().split().count("version") == 2, calls.read_text()


# ============================================================================= log limit


@needs_terraform
def test_a_task_log_is_cut_at_the_configured_limit(fresh_server):
    srv = fresh_server(args=["--task-log-limit", "1500"])
    caller, raw, product = user_product(srv, HELLO_TF)
    pp_id, task_id = launch(caller, product, {"owner": "o", "name": "x" * 200, "times": "10"})
    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    text = terraform_logs(task)
    assert "log truncated" in text, text
    assert len(text.encode()) < 1500 + 300
    # GetTaskLog holds the same text as GetTask's TerraformLogs (grouped per command and stream there)
    grouped: dict[tuple[str, str], str] = {}
    for c in full_task_log(raw, task_id):
        grouped[(c["Command"], c["Stream"])] = grouped.get((c["Command"], c["Stream"]), "") + c["Content"]
    raw_logs = raw.call("GetTask", {"TaskId": task_id})["TaskDetail"]["Log"]["TerraformLogs"]
    assert grouped == {(e["Command"], e["Stream"]): e["Content"] for e in raw_logs}
    # outputs do not depend on the log
    assert outputs(task)["greeting"]["OutputValue"].count("Hello") == 10


# ============================================================================= 10. access


@needs_terraform
def test_end_users_see_and_change_only_their_own(server, admin_v3, user_pair, make_user):
    (alice, a, a_raw), (bob, b, b_raw) = user_pair
    product = make_product(admin_v3, HELLO_TF, users=[alice, bob])
    pp_id, task_id = launch(a, product, {"owner": "alice"})
    assert wait_task(a, task_id)["Status"] == "Succeeded"

    # another user's provisioned product is as missing as one that does not exist
    expect_error(404, "EntityNotExists.ProvisionedProduct", get_pp, b, pp_id)
    expect_error(404, "EntityNotExists.ProvisionedProduct", update, b, pp_id, product, {"owner": "bob"})
    expect_error(404, "EntityNotExists.ProvisionedProduct", b.call, "TerminateProvisionedProduct", {"ProvisionedProductId": pp_id})
    expect_error(404, "InvalidTask.NotFound", get_task, b, task_id)
    expect_error(404, "InvalidTask.NotFound", task_log, b_raw, task_id)
    expect_error(404, "EntityNotExists.ProvisionedProduct", b.call, "ListTasks",
                 {"ProvisionedProductId": pp_id, "PageNumber": 1, "PageSize": 10})
    # nothing changed
    pp = get_pp(a, pp_id)
    assert pp["Status"] == "Available" and pp["LastTaskId"] == task_id

    bob_pp, bob_task = launch(b, product, {"owner": "bob"})
    assert wait_task(b, bob_task)["Status"] == "Succeeded"
    assert pp_id in list_pp_ids(a) and bob_pp not in list_pp_ids(a)
    assert bob_pp in list_pp_ids(b) and pp_id not in list_pp_ids(b)
    assert list_pp_ids(b, AccessLevelFilter="User") == list_pp_ids(b)
    expect_error(403, "Forbidden.AdministratorOnly", b.call, "ListProvisionedProducts", {"AccessLevelFilter": "Account"})
    assert owned_in_account(admin_v3, alice["PrincipalId"]) == {pp_id}
    assert owned_in_account(admin_v3, bob["PrincipalId"]) == {bob_pp}

    # a user without any grant has no launch option: the product is as missing as one that does not exist
    carol = make_user()
    c = server.caller("v3", (carol["AccessKeyId"], carol["AccessKeySecret"]))
    expect_error(404, "EntityNotExists.Product", launch, c, product, {"owner": "carol"})
    expect_error(404, "EntityNotExists.Product", launch, c, product, {"owner": "carol"}, portfolio=True)
    assert owned_in_account(admin_v3, carol["PrincipalId"]) == set()
    assert list_pp_ids(c) == set()

    # the administrator may act on anyone's product
    assert wait_task(admin_v3, terminate(admin_v3, bob_pp))["Status"] == "Succeeded"
    assert wait_task(a, terminate(a, pp_id))["Status"] == "Succeeded"


@needs_terraform
def test_full_text_search_finds_a_substring_of_the_name_in_any_case(server, admin_v3, end_user):
    """ListProvisionedProducts' `FullTextSearch` filter: an ASCII-case-insensitive substring of the
    name. On SQLite texts of three characters or more go through the trigram index, shorter ones
    through `LIKE`; the caller's `%` and `_` are taken literally either way."""
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin_v3, HELLO_TF, users=[user])
    tok = f"fts{int.from_bytes(os.urandom(4), 'big'):010d}"
    names = {"alpha": f"{tok}-Alpha", "beta": f"x-{tok.upper()}-beta", "percent": "50%_off", "other": "unrelated"}
    launched = {key: launch(caller, product, {"owner": "o"}, name=name) for key, name in names.items()}
    ids = {key: pp_id for key, (pp_id, _) in launched.items()}

    def search(text, who=caller, **extra):
        return list_pp_ids(who, Filters=[{"Key": "FullTextSearch", "Value": text}], **extra)

    assert search(tok) == {ids["alpha"], ids["beta"]}
    assert search(tok.upper()[1:-1]) == {ids["alpha"], ids["beta"]}
    assert search("ALPHA") == {ids["alpha"]}
    assert search("Be") == {ids["beta"]}
    assert search("%") == search("_") == search("0%_o") == {ids["percent"]}
    assert search("%_") == {ids["percent"]} and search("f%") == set()
    assert search(f"nomatch{tok}") == set()
    # the administrator's view of every owner filters the same way
    assert search(tok, admin_v3, AccessLevelFilter="Account") == {ids["alpha"], ids["beta"]}
    for _, task_id in launched.values():
        wait_task(caller, task_id)


@needs_terraform
def test_a_product_in_two_granted_portfolios_needs_a_portfolio_id(server, admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin_v3, HELLO_TF, users=[user])
    second = create_portfolio(admin_v3)
    admin_v3.call("AssociateProductWithPortfolio", {"ProductId": product.product_id, "PortfolioId": second})
    grant(admin_v3, second, user=user)
    e = expect_error(400, "MissingParameter.PortfolioId", launch, caller, product, {"owner": "o"})
    assert "PortfolioId" in e.message
    assert list_pp_ids(caller) == set()
    pp_id, task_id = launch(caller, product, {"owner": "o"}, PortfolioId=second)
    assert wait_task(caller, task_id)["Status"] == "Succeeded"
    assert get_pp(caller, pp_id)["PortfolioId"] == second
    # a portfolio that is not granted to the caller is no launch option
    ungranted = create_portfolio(admin_v3)
    admin_v3.call("AssociateProductWithPortfolio", {"ProductId": product.product_id, "PortfolioId": ungranted})
    expect_error(403, "Forbidden.NoLaunchOption", launch, caller, product, {"owner": "o"}, PortfolioId=ungranted)
    assert wait_task(caller, terminate(caller, pp_id))["Status"] == "Succeeded"


@needs_terraform
def test_sensitive_values_are_masked_everywhere(server, admin_v3, end_user):
    user, caller_of = end_user
    caller, raw = caller_of("v3"), caller_of("raw-v3")
    product = make_product(admin_v3, SECRET_TF, users=[user])
    secret = uniq("pw-secret-")
    pp_id, task_id = launch(caller, product, {"password": secret, "name": "visible"})
    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    assert parameters(task) == {"password": MASK, "name": "visible"}
    outs = outputs(task)
    assert outs["secret"]["OutputValue"] == MASK and outs["secret"]["Description"] == "Derived from the password."
    assert outs["plain"]["OutputValue"] == "p-visible"

    secret2 = uniq("pw-second-")
    changed = wait_task(caller, update(caller, pp_id, product, {"password": secret2}))
    assert changed["Status"] == "Succeeded", changed
    assert parameters(changed) == {"password": MASK, "name": "visible"}
    assert outputs(changed)["secret"]["OutputValue"] == MASK

    # nowhere in answers, logs or the server log
    answers = [
        json.dumps(raw.call("GetTask", {"TaskId": task_id})),
        json.dumps(raw.call("GetTask", {"TaskId": get_pp(caller, pp_id)["LastTaskId"]})),
        json.dumps(raw.call("ListTasks", {"ProvisionedProductId": pp_id, "PageNumber": 1, "PageSize": 10})),
        json.dumps(raw.call("GetProvisionedProduct", {"ProvisionedProductId": pp_id})),
        json.dumps(full_task_log(raw, task_id)),
        json.dumps(full_task_log(raw, changed["TaskId"])),
        json.dumps(admin_v3.call("GetTask", {"TaskId": task_id})),
    ]
    for text in answers:
        assert secret not in text and secret2 not in text
    assert wait_task(caller, terminate(caller, pp_id))["Status"] == "Succeeded"

    # a refused sensitive value is not echoed in the error either
    restricted = make_product(admin_v3, SECRET_TF, users=[user], Parameters={"password": {"AllowedValues": ["a", "b"]}})
    secret3 = uniq("pw-refused-")
    e = expect_error(400, "InvalidParameter.Parameters", launch, caller, restricted, {"password": secret3})
    assert secret3 not in e.message and "password" in e.message

    server_log = server.log_path.read_text(errors="replace")
    for value in (secret, secret2, secret3):
        assert value not in server_log


# ============================================================================= 11. refused launches


def test_launches_with_bad_regions_or_parameters_create_nothing(server, admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin_v3, HELLO_TF, users=[user],
                           Parameters={"size": {"AllowedValues": ["small", "large"]}})

    e = expect_error(400, "InvalidParameter.StackRegionId", launch, caller, product, {"owner": "o"},
                     StackRegionId="xx-nowhere-1")
    assert "xx-nowhere-1" in e.message
    e = expect_error(400, "InvalidParameter.Parameters", launch, caller, product, {"owner": "o", "colour": "red"})
    assert "colour" in e.message
    e = expect_error(400, "InvalidParameter.Parameters", launch, caller, product, {"name": "x"})
    assert "owner" in e.message
    e = expect_error(400, "InvalidParameter.Parameters", launch, caller, product, {"owner": "o", "size": "huge"})
    assert "size" in e.message
    expect_error(400, "InvalidParameter.Parameters", launch, caller, product, {"owner": "o", "name": "a"},
                 Parameters=kv({"owner": "o"}) + kv({"owner": "p"}))

    assert list_pp_ids(caller) == set()
    assert owned_in_account(admin_v3, user["PrincipalId"]) == set()


@needs_terraform
def test_updates_with_bad_parameters_change_nothing(server, admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    product = make_product(admin_v3, HELLO_TF, users=[user],
                           Parameters={"size": {"AllowedValues": ["small", "large"]}})
    pp_id, task_id = launch(caller, product, {"owner": "o", "size": "large"})
    assert wait_task(caller, task_id)["Status"] == "Succeeded"
    expect_error(400, "InvalidParameter.Parameters", update, caller, pp_id, product, {"colour": "red"})
    expect_error(400, "InvalidParameter.Parameters", update, caller, pp_id, product, {"size": "huge"})
    pp = get_pp(caller, pp_id)
    assert pp["Status"] == "Available" and pp["LastTaskId"] == task_id
    assert caller.call("ListTasks", {"ProvisionedProductId": pp_id, "PageNumber": 1, "PageSize": 10})["TotalCount"] == 1
    assert wait_task(caller, terminate(caller, pp_id))["Status"] == "Succeeded"
