"""Templates from Git and URLs (issue 23, a documented extension of `TemplateUrl`), through the
official SDK against the real binary: a version created from a tag of a local Git repository
(made by the test with the real `git`, the template in a subdirectory with a local module) and
from `.zip`, `.tar.gz` and single `.tf` files served over HTTP by the test, each fetched once
when the version is created and launched for real; the operator's credentials sent to the URLs
they cover; refusals (a missing ref, a 404, too large, a path escaping the archive, a URL outside
the allow-list, a server that fetches nothing) that each change nothing; a product following a
repository's tags (the `FollowRepositoryTags` extension and the `follow-tags` command).
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile

import pytest

from sclib import expect_error, serve, uniq
from test_console_audit import Console
from test_provisioning import (
    SANDBOX_HEADER, SANDBOX_SOURCE, Product, create_portfolio, grant, launch, needs_provider, needs_terraform,
    outputs, wait_task,
)

TOKEN = "Bearer s3cret-" + uniq()
MAX_BYTES = 200_000

ROOT_TF = SANDBOX_HEADER + """
variable "name" {
  type    = string
  default = "net"
}

module "net" {
  source  = "./modules/net"
  name    = var.name
  content = "%s"
}

output "file" {
  value = module.net.file
}

output "content" {
  value = module.net.content
}
"""

MODULE_TF = f"""
terraform {{
  required_providers {{
    sandbox = {{
      source = "{SANDBOX_SOURCE}"
    }}
  }}
}}

variable "name" {{
  type = string
}}

variable "content" {{
  type = string
}}

resource "sandbox_file" "net" {{
  path    = "net/${{var.name}}.txt"
  content = var.content
}}

output "file" {{
  value = sandbox_file.net.id
}}

output "content" {{
  value = sandbox_file.net.content
}}
"""


def tree(release: str) -> dict[str, str]:
    """The template's files: root module and a local module."""
    return {"main.tf": ROOT_TF % release, "modules/net/main.tf": MODULE_TF}


def zipped(files: dict[str, str | bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(name, content)
    return out.getvalue()


def tarred(files: dict[str, str | bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as t:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Files(http.server.BaseHTTPRequestHandler):
    """Serves `FILES[path]`; paths under /private/ need the operator's bearer token."""
    FILES: dict[str, bytes] = {}
    SEEN: list[tuple[str, str | None]] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.SEEN.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/private/") and self.headers.get("Authorization") != TOKEN:
            self.send_response(401)
            self.end_headers()
            return
        body = self.FILES.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def git(repo, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


def commit_release(repo, release: str, tag: str, files: dict[str, str] | None = None) -> str:
    """Writes the template of `release` under infra/ (beside files Terraform does not read), commits, tags."""
    for path, content in (files or tree(release)).items():
        target = repo / "infra" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    (repo / "README.md").write_text(f"release {release}\n")
    (repo / "infra" / "NOTES.md").write_text("not Terraform\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", release)
    git(repo, "tag", tag)
    return git(repo, "rev-parse", f"{tag}^{{commit}}")


@pytest.fixture(scope="module")
def files_server():
    httpd = serve(Files)
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    return tmp_path_factory.mktemp("repos")


@pytest.fixture(scope="module")
def sources_server(server_factory, files_server, repos, tmp_path_factory):
    """A server allowed to fetch from the test's HTTP server and repositories only."""
    credentials = tmp_path_factory.mktemp("sources") / "credentials.toml"
    credentials.write_text(f'[[credential]]\nprefix = "{files_server}/private/"\nauthorization_env = "SC_TEST_TOKEN"\n')
    return server_factory(env={"SC_TEST_TOKEN": TOKEN}, args=[
        "--template-sources", f"{files_server}/,file://{repos}/",
        "--template-source-credentials", str(credentials),
        "--template-source-max-bytes", str(MAX_BYTES),
        "--template-source-transform", "Aliyun::Terraform-v1.0",
    ])


@pytest.fixture(scope="module")
def admin(sources_server):
    return sources_server.caller("v3")


@pytest.fixture(scope="module")
def admin_raw(sources_server):
    return sources_server.caller("raw-v3")


@pytest.fixture(scope="module")
def user(sources_server):
    info = sources_server.create_user()
    return info, sources_server.caller("v3", (info["AccessKeyId"], info["AccessKeySecret"]))


def create_product(admin, url: str, version: str = "v1") -> tuple[str, str]:
    r = admin.call("CreateProduct", {
        "ProductName": uniq("prod-"), "ProviderName": "conformance", "ProductType": "Ros",
        "TemplateType": "RosTerraformTemplate",
        "ProductVersionParameters": {"ProductVersionName": version, "TemplateUrl": url,
                                     "TemplateType": "RosTerraformTemplate"}})
    return r["ProductId"], r["ProductVersionId"]


def granted(admin, user, product_id: str, version_id: str) -> Product:
    portfolio_id = create_portfolio(admin)
    admin.call("AssociateProductWithPortfolio", {"ProductId": product_id, "PortfolioId": portfolio_id})
    grant(admin, portfolio_id, user=user[0])
    return Product(product_id, version_id, portfolio_id)


def detail(admin_raw, version_id: str) -> dict:
    # `TemplateSource` is an extension the official SDK's model drops: read through the plain signer.
    return admin_raw.call("GetProductVersion", {"ProductVersionId": version_id})["ProductVersionDetail"]


def versions(admin, product_id: str) -> list[str]:
    listed = admin.call("ListProductVersions", {"ProductId": product_id})["ProductVersionDetails"]
    return sorted(v["ProductVersionName"] for v in listed)


def launched_content(caller, product: Product) -> str:
    _, task_id = launch(caller, product, {"name": uniq("n")})
    task = wait_task(caller, task_id)
    assert task["Status"] == "Succeeded", task
    return outputs(task)["content"]["OutputValue"]


@pytest.fixture(scope="module")
def repo(repos):
    """A repository with tags v1 and v2 (the template under infra/, a module under infra/modules/net)."""
    path = repos / "network"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commits = {"v1": commit_release(path, "release-1", "v1"), "v2": commit_release(path, "release-2", "v2")}
    return path, commits


@needs_terraform
@needs_provider
def test_a_version_from_a_git_tag_is_fetched_once_and_launched_for_real(admin, admin_raw, user, repo, repos):
    path, commits = repo
    # A copy, removed before the launches: nothing is fetched at launch time.
    copy = repos / uniq("copy-")
    shutil.copytree(path, copy)
    url = f"git::file://{copy}//infra?ref=v1"
    product_id, v1 = create_product(admin, url)
    v2 = admin.call("CreateProductVersion", {
        "ProductId": product_id, "ProductVersionName": "v2", "TemplateType": "RosTerraformTemplate",
        "TemplateUrl": url.replace("ref=v1", "ref=v2")})["ProductVersionId"]
    shown = detail(admin_raw, v1)
    assert shown["TemplateUrl"] == url
    assert shown["TemplateSource"] == {"Url": url, "Commit": commits["v1"]}
    assert detail(admin_raw, v2)["TemplateSource"]["Commit"] == commits["v2"]
    # The module's variables are no parameters; the files Terraform does not read were not taken.
    assert {p["ParameterKey"] for p in shown["ParameterConstraints"]} == {"name"}
    body = json.loads(admin.call("GetTemplate", {"ProductId": product_id, "ProductVersionId": v1})["TemplateBody"])
    assert set(body["Workspace"]) == {"main.tf", "modules/net/main.tf"}
    assert body["Transform"] == "Aliyun::Terraform-v1.0"
    listed = admin_raw.call("ListProductVersions", {"ProductId": product_id})["ProductVersionDetails"]
    assert {v["TemplateSource"]["Commit"] for v in listed} == set(commits.values())

    shutil.rmtree(copy)
    caller = user[1]
    assert launched_content(caller, granted(admin, user, product_id, v1)) == "release-1"
    assert launched_content(caller, Product(product_id, v2, "")) == "release-2"


@needs_terraform
@needs_provider
def test_archives_and_a_single_file_over_http_are_fetched_and_launched(admin, admin_raw, user, files_server):
    key = uniq()
    Files.FILES[f"/{key}/t.zip"] = zipped({f"pkg/{p}": c for p, c in tree("zip").items()} | {"pkg/README.md": "x"})
    Files.FILES[f"/{key}/t.tar.gz"] = tarred({f"./{p}": c for p, c in tree("tgz").items()})
    single = SANDBOX_HEADER + 'variable "name" {}\n\noutput "content" {\n  value = "single"\n}\n'
    Files.FILES[f"/private/{key}/main.tf"] = single.encode()

    zip_url = f"{files_server}/{key}/t.zip//pkg"
    product_id, zip_version = create_product(admin, zip_url)
    shown = detail(admin_raw, zip_version)
    assert shown["TemplateSource"] == {"Url": zip_url, "Sha256": hashlib.sha256(Files.FILES[f"/{key}/t.zip"]).hexdigest()}
    tgz_version = admin.call("CreateProductVersion", {
        "ProductId": product_id, "ProductVersionName": "tgz", "TemplateType": "RosTerraformTemplate",
        "TemplateUrl": f"{files_server}/{key}/t.tar.gz"})["ProductVersionId"]
    # Under /private/ the operator's credential is sent (and nowhere else).
    single_version = admin.call("CreateProductVersion", {
        "ProductId": product_id, "ProductVersionName": "single", "TemplateType": "RosTerraformTemplate",
        "TemplateUrl": f"{files_server}/private/{key}/main.tf"})["ProductVersionId"]
    seen = {path: auth for path, auth in Files.SEEN if key in path}
    assert seen[f"/private/{key}/main.tf"] == TOKEN and seen[f"/{key}/t.zip"] is None, seen
    # Nothing is fetched again at launch time.
    for path in list(Files.FILES):
        if key in path:
            del Files.FILES[path]

    caller = user[1]
    product = granted(admin, user, product_id, zip_version)
    assert launched_content(caller, product) == "zip"
    assert launched_content(caller, Product(product_id, tgz_version, "")) == "tgz"
    assert launched_content(caller, Product(product_id, single_version, "")) == "single"
    assert not [p for p, _ in Files.SEEN[len(seen):] if key in p and p not in seen]


def test_refusals_name_the_parameter_and_change_nothing(admin, repo, repos, files_server):
    path, _ = repo
    key = uniq()
    Files.FILES[f"/{key}/big.tf"] = b"#" * (MAX_BYTES + 1)
    Files.FILES[f"/{key}/escape.tar.gz"] = tarred({"main.tf": "", "../evil.tf": ""})
    Files.FILES[f"/{key}/broken.tf"] = b'variable "a" {'
    Files.FILES[f"/{key}/empty.zip"] = zipped({"README.md": "no Terraform here"})
    Files.FILES[f"/{key}/private.tf"] = b""
    host, port = files_server.removeprefix("http://").split(":")
    product_id, _ = create_product(admin, f"git::file://{path}//infra?ref=v1")
    refused = {
        f"git::file://{path}//infra?ref=v9": "v9",
        f"git::file://{path}//nowhere?ref=v1": "no .tf or .tf.json file under the subdirectory nowhere",
        f"{files_server}/{key}/missing.tf": "404",
        f"{files_server}/{key}/big.tf": f"larger than {MAX_BYTES} bytes",
        f"{files_server}/{key}/escape.tar.gz": "unsafe path",
        f"{files_server}/{key}/broken.tf": "syntax error",
        f"{files_server}/{key}/empty.zip": "no .tf or .tf.json file",
        f"{files_server}/private/{key}/none.tf".replace("/private/", "/private2/"): "404",
        f"http://localhost:{port}/{key}/private.tf": "not under a prefix",
        "git::file:///etc//x?ref=v1": "not under a prefix",
        f"http://user:pw@{host}:{port}/{key}/private.tf": "must not carry credentials",
        f"{files_server}/{key}/notes.md": "must end with .tf, .tf.json, .zip or .tar.gz",
    }
    for url, why in refused.items():
        err = expect_error(400, "InvalidParameter.TemplateUrl", admin.call, "CreateProductVersion", {
            "ProductId": product_id, "ProductVersionName": uniq("v"), "TemplateType": "RosTerraformTemplate",
            "TemplateUrl": url})
        assert why in err.message and "pw" not in err.message, (url, err.message)
    err = expect_error(400, "InvalidParameter.ProductVersionParameters", create_product, admin,
                       f"{files_server}/{key}/missing.tf")
    assert "ProductVersionParameters.TemplateUrl" in err.message
    assert versions(admin, product_id) == ["v1"]


def test_the_consoles_version_forms_take_a_template_url_with_refusals_at_the_field(sources_server, admin, repo):
    path, _ = repo
    console = Console(sources_server, *sources_server.admin_key())
    product_id, _ = create_product(admin, f"git::file://{path}//infra?ref=v1")
    outside = "git::file:///etc//x?ref=v1"
    add = f"/console/admin/products/{product_id}/add-version"
    kept = f'name="template_url" value="{outside}" aria-describedby="template-url-hint" aria-invalid="true"'
    r = console.post(add, version="v2", guidance="Default", template="", template_url=outside)
    assert r.status_code == 400 and "not under a prefix" in r.text and kept in r.text, (r.status_code, r.text[-3000:])
    both = console.post(add, version="v2", guidance="Default", template='variable "a" {}', template_url=outside)
    assert both.status_code == 400 and "not both" in both.text, both.status_code
    neither = console.post(add, version="v2", guidance="Default", template="", template_url=" ")
    assert neither.status_code == 400 and "or give its URL" in neither.text, neither.status_code
    assert versions(admin, product_id) == ["v1"]
    r = console.post(add, version="v2", guidance="Recommended", template="", template_url=f"git::file://{path}//infra?ref=v2")
    assert r.status_code == 303, (r.status_code, r.text[-3000:])
    assert versions(admin, product_id) == ["v1", "v2"]

    # Publishing a product takes a URL too; its refusal (under ProductVersionParameters) is at the field.
    publish = {"name": uniq("console-"), "provider": "console", "version": "v1", "guidance": "Default", "template": ""}
    r = console.post("/console/admin/products", **publish, template_url=outside)
    assert r.status_code == 400 and kept in r.text, (r.status_code, r.text[-3000:])
    r = console.post("/console/admin/products", **publish, template_url=f"git::file://{path}//infra?ref=v1")
    assert r.status_code == 303, (r.status_code, r.text[-3000:])
    assert versions(admin, r.headers["location"].rsplit("/", 1)[1]) == ["v1"]


def test_a_server_fetches_nothing_unless_the_operator_allows_it(admin_v3, repo):
    path, _ = repo
    err = expect_error(400, "InvalidParameter.ProductVersionParameters", create_product, admin_v3,
                       f"git::file://{path}//infra?ref=v1")
    assert "does not fetch templates from URLs" in err.message and "--template-sources" in err.message


def test_a_product_follows_the_new_tags_of_a_repository(sources_server, admin, admin_raw, repos):
    path = repos / uniq("followed-")
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    commits = {"v1": commit_release(path, "r1", "v1"), "v2": commit_release(path, "r2", "v2")}
    commit_release(path, "nightly", "nightly")
    repository = f"git::file://{path}//infra"
    product_id, _ = create_product(admin, f"{repository}?ref=v1")

    def follow(**extra):
        return admin_raw.call("FollowRepositoryTags", {"ProductId": product_id, "RepositoryUrl": repository,
                                                       "TagPattern": "v*", **extra})

    first = follow()
    assert [(c["Tag"], c["Commit"]) for c in first["CreatedProductVersions"]] == [("v2", commits["v2"])]
    assert first["ExistingTags"] == ["v1"] and first["RefusedTags"] == []
    assert versions(admin, product_id) == ["v1", "v2"]
    created = detail(admin_raw, first["CreatedProductVersions"][0]["ProductVersionId"])
    assert created["TemplateUrl"] == f"{repository}?ref=v2" and created["Active"] is True

    # Again: nothing new. Then a new tag, and one whose template is refused: only the new one is created.
    assert follow()["CreatedProductVersions"] == []
    commits["v3"] = commit_release(path, "r3", "v3")
    commit_release(path, "broken", "v4", files={"main.tf": 'variable "a" {'})
    # The command of the binary calls the action.
    key = sources_server.admin_key()
    env = {**os.environ, "SERVICECATALOG_ENDPOINT": sources_server.endpoint, "SERVICECATALOG_ACCESS_KEY_ID": key[0],
           "SERVICECATALOG_ACCESS_KEY_SECRET": key[1], "HOME": str(repos)}
    run = subprocess.run([str(sources_server.binary), "follow-tags", product_id, repository, "--pattern", "v*"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert f"created v3 " in lines[0] and lines[0].endswith(commits["v3"]), lines
    assert "exists v1" in lines and "exists v2" in lines, lines
    assert any(line.startswith("refused v4: ") and "syntax error" in line for line in lines), lines
    assert versions(admin, product_id) == ["v1", "v2", "v3"]

    again = follow()
    assert again["CreatedProductVersions"] == [] and again["ExistingTags"] == ["v1", "v2", "v3"]
    assert [r["Tag"] for r in again["RefusedTags"]] == ["v4"]
    expect_error(400, "InvalidParameter.RepositoryUrl", follow, RepositoryUrl=f"{repository}?ref=v1")
    expect_error(400, "InvalidParameter.TagPattern", follow, TagPattern="v[")
    expect_error(404, "EntityNotExists.Product", follow, ProductId="prod-none")
    assert versions(admin, product_id) == ["v1", "v2", "v3"]
