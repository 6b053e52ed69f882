"""Templates as Terraform reads them (issue 23), through the official SDK against the real binary:
the Workspace's top directory is the root module (`.tf` and `.tf.json` files), subdirectories are
modules called by a relative `source`. Only the root module's variables are launch parameters and
only its outputs are the task's; a module's files are checked for syntax (naming the file) and for
what would displace the service's settings, in either syntax; a Workspace without a root module
is refused. Launched for real with the bundled sandbox provider, reusing `init` across tasks until
a module changes.
"""
from __future__ import annotations

import json

import pytest

from sclib import expect_error, uniq
from test_init_reuse import REUSED
from test_provisioning import (
    SANDBOX_HEADER, SANDBOX_SOURCE, launch, make_product, needs_provider, needs_terraform, outputs,
    sandbox_files, terminate, terraform_logs, wait_task,
)

# The root module: a variable named like the module's, a call of the module by relative path.
ROOT_TF = SANDBOX_HEADER + """
variable "cidr" {
  type        = string
  default     = "10.0.0.0/16"
  description = "The network's range."
}

module "net" {
  source      = "./modules/net"
  cidr        = var.cidr
  name        = var.name
  subnet_bits = 8
}
"""

# Root variables and outputs in Terraform's JSON syntax; the outputs surface the module's.
ROOT_JSON = json.dumps({
    "variable": {"name": {"type": "string", "default": "net", "description": "The network's name."}},
    "output": {
        "network_file": {"value": "${module.net.file}", "description": "Where the module wrote."},
        "network_cidr": {"value": "${module.net.content}"},
    },
}, indent=2)

MODULE_TF = f"""
terraform {{
  required_providers {{
    sandbox = {{
      source = "{SANDBOX_SOURCE}"
    }}
  }}
}}

variable "cidr" {{
  type = string
}}

variable "name" {{
  type = string
}}

variable "subnet_bits" {{
  type = number
}}

resource "sandbox_file" "net" {{
  path    = "net/${{var.name}}.txt"
  content = "${{var.cidr}}/${{var.subnet_bits}}"
}}

output "file" {{
  value = sandbox_file.net.id
}}
"""

MODULE_JSON = json.dumps({"output": {"content": {"value": "${sandbox_file.net.content}"}}})


def workspace(**changes) -> dict:
    files = {"main.tf": ROOT_TF, "variables.tf.json": ROOT_JSON, "modules/net/main.tf": MODULE_TF,
             "modules/net/outputs.tf.json": MODULE_JSON}
    files.update(changes)
    return {path: text for path, text in files.items() if text is not None}


def body(files: dict) -> str:
    return json.dumps({"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.0",
                       "Workspace": files})


def create_template(caller, files: dict) -> str:
    return caller.call("CreateTemplate", {"TemplateType": "RosTerraformTemplate", "TemplateBody": body(files)})["TemplateUrl"]


def test_only_the_root_modules_variables_are_parameters(admin_v3, raw):
    product = make_product(admin_v3, "", Workspace=workspace(**{"main.tf": ROOT_TF + f"# {uniq()}\n"}))
    # `ParameterConstraints` is an extension the official SDK's model drops: read through the plain signer.
    detail = raw.call("GetProductVersion", {"ProductVersionId": product.version_id})["ProductVersionDetail"]
    params = {p["ParameterKey"]: p for p in detail["ParameterConstraints"]}
    # `cidr` is declared by the root and by the module, `subnet_bits` (required) by the module only.
    assert set(params) == {"cidr", "name"}, params
    assert (params["cidr"]["Type"], params["cidr"]["DefaultValue"], params["cidr"]["Required"]) == (
        "string", "10.0.0.0/16", False)
    assert (params["name"]["Description"], params["name"]["DefaultValue"]) == ("The network's name.", "net")
    template = admin_v3.call("GetTemplate", {"ProductId": product.product_id, "ProductVersionId": product.version_id})
    assert set(json.loads(template["TemplateBody"])["Workspace"]) == set(workspace())


@needs_terraform
@needs_provider
def test_a_template_with_a_local_module_is_launched_for_real(server, admin_v3, end_user):
    user, caller_of = end_user
    caller = caller_of("v3")
    marker = f"# {uniq()}\n"
    product = make_product(admin_v3, "", users=[user], Workspace=workspace(**{"main.tf": ROOT_TF + marker}))
    # A module's variable is no parameter of the product.
    expect_error(400, "InvalidParameter.Parameters", launch, caller, product, {"subnet_bits": "4"})

    pp_id, task_id = launch(caller, product, {"name": "prod", "cidr": "10.1.0.0/16"})
    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    outs = outputs(task)
    assert set(outs) == {"network_file", "network_cidr"}, outs
    assert outs["network_file"]["OutputValue"] == "net/prod.txt"
    assert outs["network_file"]["Description"] == "Where the module wrote."
    assert outs["network_cidr"]["OutputValue"] == "10.1.0.0/16/8"
    assert sandbox_files(server, pp_id) == {"net/prod.txt": "10.1.0.0/16/8"}

    # The same Workspace again: init is reused, and the module still resolves from the working directory.
    second, second_task = launch(caller, product, {"name": "other"})
    task = wait_task(caller, second_task)
    assert task["Status"] == "Succeeded", task
    assert REUSED in terraform_logs(task, "init"), terraform_logs(task, "init")
    assert outputs(task)["network_cidr"]["OutputValue"] == "10.0.0.0/16/8"

    # Only the module changes in a new version: init runs again, and the changed module is what runs.
    changed = workspace(**{"main.tf": ROOT_TF + marker,
                           "modules/net/main.tf": MODULE_TF.replace('content = "', 'content = "v2:')})
    url = create_template(admin_v3, changed)
    v2 = admin_v3.call("CreateProductVersion", {"ProductId": product.product_id, "ProductVersionName": "v2",
                                                 "TemplateType": "RosTerraformTemplate", "TemplateUrl": url})
    third, third_task = launch(caller, product, {"name": "third"}, ProductVersionId=v2["ProductVersionId"])
    task = wait_task(caller, third_task)
    assert task["Status"] == "Succeeded", task
    assert REUSED not in terraform_logs(task, "init"), terraform_logs(task, "init")
    assert outputs(task)["network_cidr"]["OutputValue"] == "v2:10.0.0.0/16/8"

    for pp in (pp_id, second, third):
        assert wait_task(caller, terminate(caller, pp))["Status"] == "Succeeded"
    assert sandbox_files(server, pp_id) == {}


REFUSED = [
    ("no root module", {"main.tf": None, "variables.tf.json": None}, "no file in its top directory", None),
    ("module syntax", {"modules/net/main.tf": 'variable "a" {\n  default = \n}\n'}, "HCL syntax error at line 2",
     "modules/net/main.tf"),
    ("module json syntax", {"modules/net/outputs.tf.json": '{"output": {,}}'}, "JSON syntax error at line 1",
     "modules/net/outputs.tf.json"),
    ("json backend", {"state.tf.json": json.dumps({"terraform": {"backend": {"s3": {"bucket": "elsewhere"}}}})},
     "declares a backend block", "state.tf.json"),
    ("module backend", {"modules/net/state.tf": 'terraform {\n  backend "local" {\n    path = "/tmp/x"\n  }\n}\n'},
     "declares a backend block", "modules/net/state.tf"),
    ("json override", {"override.tf.json": json.dumps({"terraform": {"backend": {"local": {"path": "/tmp/x"}}}})},
     "override file", "override.tf.json"),
    ("module tfvars", {"modules/net/x.auto.tfvars.json": "{}"}, "must end with .tf or .tf.json", "x.auto.tfvars.json"),
    ("duplicate in a module", {"modules/net/more.tf.json": json.dumps({"variable": {"cidr": {}}})},
     "declared twice (modules/net/main.tf and modules/net/more.tf.json)", None),
]


@pytest.mark.parametrize("changes,why,names", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refusals_name_the_file(admin_v3, changes, why, names):
    e = expect_error(400, "InvalidParameter.TemplateBody", create_template, admin_v3, workspace(**changes))
    assert why in e.message and (names is None or names in e.message), e.message
