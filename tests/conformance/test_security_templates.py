"""Hostile templates (issue 18): pathological nesting is refused with a 4xx before it reaches the
parser and the node stays up; templates that would displace the service's own settings (backend,
`cloud`, override files, `*.auto.tfvars`, in `.tf` or `.tf.json` form) are refused naming the file; a version stored before
those rules is never run."""
from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from sclib import expect_error, uniq
from test_provisioning import get_pp, get_task, launch, make_product, terminate, wait_task

N = 5000

# (kind, a file nesting N levels of it)
PATHOLOGICAL = [
    ("lists", "locals { x = " + "[" * N + "\n"),
    ("parentheses", "locals { x = " + "(" * N + "1" + ")" * N + " }\n"),
    ("objects", "locals { x = " + "{a = " * N + "1" + "}" * N + " }\n"),
    ("blocks", "a {\n" * N),
    ("function calls", "locals { x = " + "max(1, " * N + "1" + ")" * N + " }\n"),
    ("interpolations", "locals { x = " + '"${' * N + "\n"),
    ("template directives", 'locals { x = "' + "%{if true}" * N + '" }\n'),
    ("heredocs", "locals { x = " + "<<E\n${" * N + "\n"),
    ("operator chains", "locals { x = 1" + " + 1" * N + " }\n"),
    ("negations", "locals { x = " + "!" * N + "true }\n"),
    ("conditionals", "locals { x = " + "true ? 0 : " * N + "1 }\n"),
]

MAIN_TF = 'variable "name" {\n  default = "x"\n}\noutput "greeting" {\n  value = "hello ${var.name}"\n}\n'


def body(files: dict) -> str:
    return json.dumps({"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.0",
                       "Workspace": files})


def create_template(caller, text: str) -> str:
    return caller.call("CreateTemplate", {"TemplateType": "RosTerraformTemplate", "TemplateBody": text})["TemplateUrl"]


def assert_serving(server, caller) -> None:
    assert server.alive(), server.log_tail()
    assert create_template(caller, body({"main.tf": MAIN_TF + f"# {uniq()}\n"})).endswith("/template.json")


@pytest.mark.parametrize("kind,text", PATHOLOGICAL, ids=[k for k, _ in PATHOLOGICAL])
def test_pathological_nesting_is_refused_and_the_node_stays_up(server, admin_v3, kind, text):
    e = expect_error(400, "InvalidParameter.TemplateBody", create_template, admin_v3,
                     body({"main.tf": MAIN_TF, "deep.tf": text}))
    assert "deep.tf" in e.message and "more than 100 levels deep" in e.message, e.message
    assert_serving(server, admin_v3)


def test_a_deeply_nested_json_body_is_refused(server, admin_v3, admin_core):
    deep = "[" * N + "]" * N
    text = '{"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.0", "Parameters": ' + deep + "}"
    e = expect_error(400, "InvalidParameter.TemplateBody", create_template, admin_v3, text)
    assert "not a valid JSON object" in e.message, e.message
    # The same nesting inside CreateProduct's ProductVersionParameters (one JSON string on the wire).
    params = {"ProductName": uniq("prod-"), "ProviderName": "conformance", "ProductType": "Ros",
              "ProductVersionParameters": '{"ProductVersionName": "v1", "Description": ' + deep + "}"}
    expect_error(400, "InvalidParameter.ProductVersionParameters", admin_core.call, "CreateProduct", params)
    assert_serving(server, admin_v3)


def test_sizes_are_bounded(server, admin_v3):
    big = "# " + "x" * (512 * 1024) + "\n"
    e = expect_error(400, "InvalidParameter.TemplateBody", create_template, admin_v3, body({"main.tf": MAIN_TF, "big.tf": big}))
    assert "big.tf" in e.message and "at most 524288" in e.message, e.message
    # The whole body is bounded by --max-parameter-bytes (1 MiB by default) before the 2 MiB Workspace limit.
    files = {f"f{i}.tf": "# " + "x" * (500 * 1024) + "\n" for i in range(5)}
    e = expect_error(400, "InvalidParameter.TemplateBody", create_template, admin_v3, body(files))
    assert "the limit is 1048576 bytes" in e.message, e.message
    assert_serving(server, admin_v3)


def test_a_refused_template_gives_no_url_to_versions(server, admin_v3):
    url = create_template(admin_v3, body({"main.tf": MAIN_TF + f"# {uniq()}\n"}))
    product_id = admin_v3.call("CreateProduct", {
        "ProductName": uniq("prod-"), "ProviderName": "conformance", "ProductType": "Ros",
        "ProductVersionParameters": {"ProductVersionName": "v1", "TemplateUrl": url,
                                     "TemplateType": "RosTerraformTemplate"}})["ProductId"]
    expect_error(400, "InvalidParameter.TemplateBody", create_template, admin_v3, body({"deep.tf": PATHOLOGICAL[0][1]}))
    # Nothing was stored: only URLs of accepted templates make versions.
    bogus = url.rsplit("/", 2)[0] + "/tpl-" + "0" * 14 + "/template.json"
    expect_error(400, "InvalidParameter.TemplateUrl", admin_v3.call, "CreateProductVersion", {
        "ProductId": product_id, "ProductVersionName": "v2", "TemplateType": "RosTerraformTemplate", "TemplateUrl": bogus})


DISPLACING = [
    ("override.tf", {"override.tf": 'terraform {\n  backend "local" {\n    path = "/tmp/x.tfstate"\n  }\n}\n'}, "override file"),
    ("zzzz_override.tf", {"zzzz_override.tf": 'terraform {\n  backend "local" {\n    path = "/tmp/x.tfstate"\n  }\n}\n'},
     "override file"),
    ("state.tf", {"state.tf": 'terraform {\n  backend "s3" {\n    bucket = "elsewhere"\n  }\n}\n'}, "declares a backend block"),
    ("cloud.tf", {"cloud.tf": 'terraform {\n  cloud {\n    organization = "elsewhere"\n  }\n}\n'}, "declares a cloud block"),
    ("x.auto.tfvars", {"x.auto.tfvars": 'name = "from the template"\n'}, "must end with .tf"),
    ("terraform.tfvars", {"terraform.tfvars": 'name = "from the template"\n'}, "must end with .tf"),
    ("main_override.tf.json", {"main_override.tf.json": "{}"}, "override file"),
    ("state.tf.json", {"state.tf.json": '{"terraform": {"backend": {"s3": {"bucket": "elsewhere"}}}}'},
     "declares a backend block"),
    ("x.auto.tfvars.json", {"x.auto.tfvars.json": '{"name": "from the template"}'}, "must end with .tf or .tf.json"),
    (".terraform/modules/x.tf", {".terraform/modules/x.tf": ""}, "inside .terraform/"),
]


@pytest.mark.parametrize("name,files,why", DISPLACING, ids=[d[0] for d in DISPLACING])
def test_templates_that_would_displace_the_services_settings_are_refused(server, admin_v3, name, files, why):
    e = expect_error(400, "InvalidParameter.TemplateBody", create_template, admin_v3, body({"main.tf": MAIN_TF, **files}))
    assert name in e.message and why in e.message, e.message


def _rewrite_template(server, template_id: str, text: str) -> None:
    """Stores `text` as the body of a template behind the service's back (a version stored before the rules)."""
    if server.database:
        literal = text.replace("'", "''")
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", server.database, "-c",
                        f"UPDATE templates SET body = '{literal}' WHERE template_id = '{template_id}'"], check=True, timeout=60)
    else:
        with sqlite3.connect(server.data_dir / "servicecatalog.db", timeout=30) as db:
            assert db.execute("UPDATE templates SET body = ? WHERE template_id = ?", (text, template_id)).rowcount == 1


def test_a_stored_template_that_displaces_the_backend_is_never_run(server, admin_v3, end_user):
    user, caller_for = end_user
    caller = caller_for("v3")
    product = make_product(admin_v3, MAIN_TF + f"# {uniq()}\n", users=[user])
    pp_id, task_id = launch(caller, product)
    assert wait_task(caller, task_id)["Status"] == "Succeeded"

    url = admin_v3.call("GetProductVersion", {"ProductVersionId": product.version_id})["ProductVersionDetail"]["TemplateUrl"]
    template_id = url.rsplit("/", 2)[1]
    hostile = 'terraform {\n  backend "local" {\n    path = "/tmp/elsewhere.tfstate"\n  }\n}\n'
    _rewrite_template(server, template_id, body({"main.tf": MAIN_TF, "zzzz_override.tf": hostile}))

    # New changes are refused up front, naming the file...
    e = expect_error(409, "InvalidStatus.ProductVersion", launch, caller, product)
    assert "zzzz_override.tf" in e.message, e.message
    # ...the version can still be read (to be deactivated or deleted)...
    assert admin_v3.call("GetProductVersion", {"ProductVersionId": product.version_id})["ProductVersionDetail"]
    # ...and a change already allowed (terminate) fails without running Terraform.
    task = wait_task(caller, terminate(caller, pp_id))
    assert task["Status"] == "Failed", task
    assert "zzzz_override.tf" in task["StatusMessage"] and "cannot be run" in task["StatusMessage"], task
    ran = {log["Command"] for log in task.get("Log", {}).get("TerraformLogs", [])}
    assert ran <= {"servicecatalog"}, task  # the engine's own note only: no terraform command ran
    assert get_pp(caller, pp_id)["Status"] != "UnderChange"
    assert get_task(caller, task_id)["Status"] == "Succeeded"
