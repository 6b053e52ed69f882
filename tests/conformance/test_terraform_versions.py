"""Terraform binaries by version: the operator declares the binaries it has (`--terraform VERSION=PATH`,
`--terraform-dir`), each product version runs the newest binary of the `major.minor` its template's `Transform`
names, a `Transform` no binary serves is refused at CreateProduct / CreateProductVersion with the list of what is
served, and a version stored before its binary was removed fails its task (and its plan's preview) with that
message rather than run another version.

Two real versions: Terraform 1.0.3, which scripts/setup installs at .tools/terraform/terraform-1.0.3, beside the
`terraform` on PATH (1.11 on the machines this was built on)."""
from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess

import pytest

import sclib
from sclib import expect_error, uniq
from test_plans import create_plan, wait_plan
from test_provisioning import (HELLO_TF, launch, make_product, new_user, terraform_logs,
                               tf_body, user_product, wait_task)

OLD = sclib.REPO / ".tools" / "terraform" / "terraform-1.0.3"


def _binary_on_path() -> tuple[str, str] | None:
    """The `terraform` on PATH and its version, when it is not 1.0 (the tests need two release lines)."""
    found = shutil.which("terraform")
    if not found:
        return None
    out = subprocess.run([found, "version"], capture_output=True, text=True, env={**os.environ, "CHECKPOINT_DISABLE": "1"})
    first = out.stdout.splitlines()[0] if out.stdout else ""
    version = first.removeprefix("Terraform v")
    if first == version or version.startswith("1.0."):
        return None
    return found, version


NEW = _binary_on_path()

pytestmark = [
    pytest.mark.skipif(not OLD.is_file(), reason="no .tools/terraform/terraform-1.0.3: run scripts/setup"),
    pytest.mark.skipif(NEW is None, reason="no terraform other than 1.0.x on PATH"),
]


def line_of(version: str) -> str:
    """The Transform of a version's release line: 1.11.4 -> Aliyun::Terraform-v1.11."""
    major, minor = version.split(".")[:2]
    return f"Aliyun::Terraform-v{major}.{minor}"


def both_binaries() -> list[str]:
    new_path, new_version = NEW
    return ["--terraform", f"1.0.3={OLD}", "--terraform", f"{new_version}={new_path}"]


def served_list() -> str:
    new_version = NEW[1]
    return f"{line_of(new_version)} (Terraform {new_version}), Aliyun::Terraform-v1.0 (Terraform 1.0.3)"


@pytest.fixture(scope="module")
def versioned(server_factory):
    """A server running Terraform 1.0.3 and the newer one, each declared with its version."""
    return server_factory(args=[*both_binaries(), "--workers", "2"])


def test_two_products_pinned_to_two_versions_run_side_by_side(versioned):
    admin = versioned.caller("v3")
    user, caller, _ = new_user(versioned)
    new_version = NEW[1]
    old = make_product(admin, HELLO_TF, users=[user], transform="Aliyun::Terraform-v1.0")
    new = make_product(admin, HELLO_TF, users=[user], transform=line_of(new_version))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        launched = list(pool.map(lambda args: launch(caller, args[0], {"owner": args[1]}),
                                 [(old, "a"), (new, "b"), (old, "c"), (new, "d")]))
        tasks = list(pool.map(lambda pt: wait_task(caller, pt[1]), launched))
    assert all(t["Status"] == "Succeeded" for t in tasks), tasks
    for task, wanted in zip(tasks, ["1.0.3", new_version, "1.0.3", new_version]):
        assert terraform_logs(task, "version").startswith(f"Terraform v{wanted}\n"), terraform_logs(task, "version")
        assert "Apply complete!" in terraform_logs(task, "apply")


def test_a_transform_no_binary_serves_is_refused_with_what_is_served(versioned):
    admin = versioned.caller("v3")
    name = uniq("prod-")
    for transform in ["Aliyun::Terraform-v1.5", "Aliyun::OpenTofu-v1.8"]:
        # The template is stored (a template is only text); a version of it is what is refused.
        url = admin.call("CreateTemplate", {"TemplateType": "RosTerraformTemplate",
                                            "TemplateBody": tf_body(HELLO_TF, transform=transform)})["TemplateUrl"]
        e = expect_error(400, "InvalidParameter.ProductVersionParameters", admin.call, "CreateProduct", {
            "ProductName": name, "ProviderName": "conformance", "ProductType": "Ros",
            "TemplateType": "RosTerraformTemplate",
            "ProductVersionParameters": {"ProductVersionName": "v1", "TemplateUrl": url,
                                         "TemplateType": "RosTerraformTemplate"}})
        assert transform in e.message and served_list() in e.message, e.message
        product = make_product(admin, HELLO_TF)
        e = expect_error(400, "InvalidParameter.TemplateUrl", admin.call, "CreateProductVersion", {
            "ProductId": product.product_id, "ProductVersionName": "v2", "TemplateUrl": url,
            "TemplateType": "RosTerraformTemplate"})
        assert transform in e.message and served_list() in e.message, e.message
        versions = admin.call("ListProductVersions", {"ProductId": product.product_id})["ProductVersionDetails"]
        assert [v["ProductVersionId"] for v in versions] == [product.version_id]
    # Nothing was created by the refused CreateProduct.
    listed = admin.call("ListProductsAsAdmin", {"Filters": [{"Key": "FullTextSearch", "Value": name}]})
    assert listed["TotalCount"] == 0, listed


def test_a_version_whose_binary_is_gone_fails_its_task_and_its_plan(fresh_server, tmp_path):
    """Declared through a directory of terraform-<version> files; restarted over the same data without 1.0."""
    tools = tmp_path / "tools"
    tools.mkdir()
    new_path, new_version = NEW
    (tools / "terraform-1.0.3").symlink_to(OLD)
    (tools / f"terraform-{new_version}").symlink_to(new_path)
    srv = fresh_server(args=["--terraform-dir", str(tools)])
    caller, _, product = user_product(srv, HELLO_TF, transform="Aliyun::Terraform-v1.0")
    first = wait_task(caller, launch(caller, product, {"owner": "before"})[1])
    assert first["Status"] == "Succeeded" and "Terraform v1.0.3" in terraform_logs(first, "version"), first

    (tools / "terraform-1.0.3").unlink()
    srv.restart()
    served = f"{line_of(new_version)} (Terraform {new_version})"
    task = wait_task(caller, launch(caller, product, {"owner": "after"})[1])
    assert task["Status"] == "Failed", task
    message = task["StatusMessage"]
    assert "Aliyun::Terraform-v1.0" in message and served in message, message
    assert product.version_id in message, message
    # It never ran another version.
    assert "version" not in [entry["Command"] for entry in (task.get("Log") or {}).get("TerraformLogs") or []], task
    plan_id, _ = create_plan(caller, product, params={"owner": "plan"})
    plan = wait_plan(caller, plan_id)["PlanDetail"]
    assert plan["Status"] == "PreviewFailed" and served in plan["StatusMessage"], plan


def test_a_declared_version_the_binary_does_not_report_refuses_the_start(fresh_server):
    with pytest.raises(RuntimeError) as started:
        fresh_server(args=["--terraform", f"1.0.4={OLD}"])
    assert "declared as 1.0.4 but reports Terraform 1.0.3" in str(started.value), started.value


def test_one_declared_binary_gets_the_sample_catalog_it_can_run(fresh_server):
    new_path, new_version = NEW
    srv = fresh_server(args=["--sample-catalog", "--terraform", f"{new_version}={new_path}"])
    admin = srv.caller("v3")
    products = admin.call("ListProductsAsAdmin", {"Filters": [{"Key": "FullTextSearch", "Value": "Hello outputs"}]})
    product_id = products["ProductDetails"][0]["ProductId"]
    version = admin.call("ListProductVersions", {"ProductId": product_id})["ProductVersionDetails"][0]
    body = admin.call("GetTemplate", {"ProductId": product_id, "ProductVersionId": version["ProductVersionId"]})
    assert json.loads(body["TemplateBody"])["Transform"] == line_of(new_version)
