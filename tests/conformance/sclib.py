"""Helpers for the conformance suite: server process control and API callers.

Three caller flavours talk to the server through official client libraries:

* ``v3``   - alibabacloud-servicecatalog20210901 (tea-openapi), default ACS3-HMAC-SHA256 signing;
* ``v1``   - the same SDK with ``signature_algorithm='v2'`` (HMAC-SHA1 RPC signature);
* ``sm3``  - the same SDK with ``signature_algorithm='ACS3-HMAC-SM3'`` (V3 with SM3);
* ``core`` - aliyun-python-sdk-core ``AcsClient`` + ``CommonRequest`` (RPC, HMAC-SHA1).

Every caller has ``call(action, params) -> dict`` (the PascalCase response body)
and raises :class:`ApiError` for HTTP 4xx/5xx answers.
"""
from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import acs_sign

REPO = Path(__file__).resolve().parents[2]
TOOLS_BIN = REPO / ".tools" / "bin"
API_VERSION = "2021-09-01"
FLAVORS = ("v3", "v1", "core")

# Actions whose parameters the SDK puts in the query string (PROTOCOL.md §2);
# every other action uses a form body. Only used by the core-SDK caller.
QUERY_ACTIONS = {
    "GetConstraint", "GetPortfolio", "GetProductAsAdmin", "GetProductAsEndUser", "GetProductVersion",
    "GetProvisionedProduct", "GetTagOption", "GetTemplate", "ListLaunchOptions", "ListPortfolios",
    "ListPrincipals", "ListProductVersions", "ListProductsAsAdmin", "ListProductsAsEndUser",
    "ListProvisionedProductPlanApprovers", "ListProvisionedProductPlans", "ListProvisionedProducts",
    "ListResourcesForTagOption", "ListTagOptions", "ListTasks",
}

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def unset_proxies() -> None:
    for v in PROXY_VARS:
        os.environ.pop(v, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def uniq(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:12]


def server_binary() -> Path:
    return Path(os.environ.get("SERVICECATALOG_BIN", REPO / "target" / "release" / "servicecatalog"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(handler) -> http.server.ThreadingHTTPServer:
    """An HTTP server on a free loopback port answering with `handler` from a thread (stop: `shutdown()`)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    def __init__(self, flavor: str, status: int | None, code: str | None, message: str | None,
                 request_id: str | None = None, data: dict | None = None, access_denied_detail=None):
        super().__init__(f"[{flavor}] HTTP {status} {code}: {message}")
        self.flavor = flavor
        self.status = status
        self.code = code
        self.message = message or ""
        self.request_id = request_id
        self.data = data or {}
        self.access_denied_detail = access_denied_detail


# --------------------------------------------------------------------------- callers


class SdkCaller:
    """alibabacloud-servicecatalog20210901 client; flavor 'v3' (default signer), 'v1' or 'sm3'."""

    def __init__(self, endpoint: str, access_key_id: str, secret: str, flavor: str = "v3"):
        try:  # tea-openapi >= 0.4
            from alibabacloud_tea_openapi import utils_models as om
        except ImportError:  # tea-openapi 0.3.x
            from alibabacloud_tea_openapi import models as om
        from alibabacloud_servicecatalog20210901.client import Client

        cfg = om.Config(access_key_id=access_key_id, access_key_secret=secret, endpoint=endpoint,
                        protocol="http", region_id="cn-hangzhou", read_timeout=30000, connect_timeout=5000)
        if flavor == "v1":
            cfg.signature_algorithm = "v2"
        elif flavor == "sm3":
            cfg.signature_algorithm = "ACS3-HMAC-SM3"
        self.flavor = flavor
        self.endpoint = endpoint
        self.client = Client(cfg)

    def call(self, action: str, params: dict | None = None) -> dict:
        from alibabacloud_servicecatalog20210901 import models
        from alibabacloud_tea_openapi.exceptions import AlibabaCloudException

        try:
            if action == "ListRegions":
                resp = self.client.list_regions()
            else:
                req = getattr(models, f"{action}Request")().from_map(dict(params or {}))
                resp = getattr(self.client, _snake(action))(req)
        except AlibabaCloudException as e:
            data = dict(e.data or {}) if isinstance(getattr(e, "data", None), dict) else {}
            raise ApiError(self.flavor, e.status_code, e.code, data.get("Message", e.message),
                           e.request_id, data, getattr(e, "access_denied_detail", None)) from e
        assert resp.status_code < 400
        return resp.body.to_map()


def flatten(params: dict | None) -> list[tuple[str, str]]:
    """PascalCase params -> RPC wire pairs (lists of objects become Name.N.Field)."""
    out: list[tuple[str, str]] = []
    for k, v in (params or {}).items():
        if v is None:
            continue
        if isinstance(v, list):
            for i, item in enumerate(v, 1):
                if isinstance(item, dict):
                    out += [(f"{k}.{i}.{f}", str(x)) for f, x in item.items() if x is not None]
                else:
                    out.append((f"{k}.{i}", str(item)))
        else:
            out.append((k, str(v)))
    return out


class CoreCaller:
    """aliyun-python-sdk-core AcsClient + CommonRequest (RPC style, HMAC-SHA1)."""

    flavor = "core"

    def __init__(self, endpoint: str, access_key_id: str, secret: str):
        from aliyunsdkcore.client import AcsClient

        self.endpoint = endpoint
        self.client = AcsClient(access_key_id, secret, "cn-hangzhou", auto_retry=False, max_retry_time=0,
                                timeout=30, connect_timeout=5)

    def call(self, action: str, params: dict | None = None, version: str = API_VERSION) -> dict:
        from aliyunsdkcore.acs_exception.exceptions import ServerException
        from aliyunsdkcore.request import CommonRequest

        req = CommonRequest(domain=self.endpoint, version=version, action_name=action)
        req.set_protocol_type("http")
        req.set_method("POST")
        req.set_accept_format("json")
        for k, v in flatten(params):
            if action in QUERY_ACTIONS:
                req.add_query_param(k, v)
            else:
                req.add_body_params(k, v)
        try:
            raw = self.client.do_action_with_exception(req)
        except IndexError as e:
            # aliyunsdkcore (client._get_server_exception) does
            # `Message.split(':')[1]` on every 400 SignatureDoesNotMatch, expecting the
            # vendor's "...server string to sign is:<StringToSign>" message.
            raise AssertionError("aliyun-python-sdk-core crashed on the error answer: a SignatureDoesNotMatch "
                                 "Message must contain ':' (vendor form: '... server string to sign is:<sts>')"
                                 ) from e
        except ServerException as e:
            raise ApiError("core", e.get_http_status(), e.get_error_code(), e.get_error_msg(),
                           e.get_request_id()) from e
        return json.loads(raw)


class RawCaller:
    """Our own signer + requests: lets a test see the raw HTTP answer."""

    def __init__(self, endpoint: str, access_key_id: str, secret: str, flavor: str = "raw-v3"):
        self.flavor = flavor
        self.endpoint = endpoint
        self.access_key_id = access_key_id
        self.secret = secret

    def build(self, action: str, params: dict | None = None, **kw) -> acs_sign.RawRequest:
        placement = kw.pop("placement", "query" if action in QUERY_ACTIONS else "body")
        builder = acs_sign.build_v1 if self.flavor == "raw-v1" else acs_sign.build_v3
        return builder(self.endpoint, self.access_key_id, self.secret, action, flatten(params),
                       placement=placement, **kw)

    def send(self, action: str, params: dict | None = None, **kw):
        return self.build(action, params, **kw).send()

    def call(self, action: str, params: dict | None = None, **kw) -> dict:
        return check_raw(self.send(action, params, **kw), self.flavor)


def check_raw(resp, flavor: str = "raw") -> dict:
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"non-JSON answer (HTTP {resp.status_code}): {resp.text[:500]!r}")
    if resp.status_code >= 400:
        raise ApiError(flavor, resp.status_code, body.get("Code"), body.get("Message"), body.get("RequestId"),
                       body, body.get("AccessDeniedDetail"))
    return body


def make_caller(flavor: str, endpoint: str, access_key_id: str, secret: str):
    if flavor in ("v3", "v1", "sm3"):
        return SdkCaller(endpoint, access_key_id, secret, flavor)
    if flavor == "core":
        return CoreCaller(endpoint, access_key_id, secret)
    if flavor in ("raw-v3", "raw-v1"):
        return RawCaller(endpoint, access_key_id, secret, flavor)
    raise ValueError(flavor)


# --------------------------------------------------------------------------- PostgreSQL


class PgDatabases:
    """Creates a fresh database per server on the PostgreSQL named by a URL (needs `psql`)."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.created: list[str] = []

    def _psql(self, sql: str) -> None:
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.base_url, "-c", sql], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def create(self) -> str:
        name = uniq("sc_conformance_")
        self._psql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        u = urlsplit(self.base_url)
        return urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))

    def drop_all(self) -> None:
        for name in self.created:
            try:
                self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except subprocess.SubprocessError:
                pass
        self.created.clear()


# --------------------------------------------------------------------------- server process


class ServerProcess:
    """One `servicecatalog serve` process on a data dir (and optionally a database URL)."""

    READY_TIMEOUT = float(os.environ.get("SERVICECATALOG_TEST_READY_TIMEOUT", "60"))

    def __init__(self, data_dir: Path, database: str | None = None, env: dict | None = None,
                 root_key: tuple[str, str] | None = None, args: list[str] | None = None):
        self.binary = server_binary()
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.database = database
        self.root_key = root_key
        self.extra_env = dict(env or {})
        self.extra_args = list(args or [])
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.server.log"
        # The session's shared server, which lives until the session ends (conftest).
        self.shared = False
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.expected_exit = True

    # -- environment
    def env(self) -> dict:
        env = dict(os.environ)
        for v in PROXY_VARS:
            env.pop(v, None)
        # the binary reads SERVICECATALOG_* (DATABASE, DATA_DIR, LISTEN, ROOT_ACCESS_KEY_*...):
        # start from a clean slate so only what the test asks for applies
        for k in [k for k in env if k.startswith("SERVICECATALOG_")]:
            if not k.startswith("SERVICECATALOG_TEST_") and k != "SERVICECATALOG_BIN":
                del env[k]
        env["PATH"] = f"{TOOLS_BIN}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("NO_COLOR", "1")
        if self.root_key:
            env["SERVICECATALOG_ROOT_ACCESS_KEY_ID"], env["SERVICECATALOG_ROOT_ACCESS_KEY_SECRET"] = self.root_key
        env.update(self.extra_env)
        return env

    def storage_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        if self.database:
            args += ["--database", self.database]
        return args

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- lifecycle
    def spawn(self, command: str, *args: str) -> None:
        """Starts `servicecatalog <command> <args>` on this data, its output appended to the log."""
        cmd = [str(self.binary), command, *args, *self.storage_args(), *self.extra_args]
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env(), cwd=self.data_dir)
        self.expected_exit = False

    def start(self, port: int | None = None) -> "ServerProcess":
        import requests

        if not self.binary.is_file():
            raise RuntimeError(f"server binary {self.binary} not found: run `cargo build --release` "
                               "(or set SERVICECATALOG_BIN)")
        self.port = port or free_port()
        self.spawn("serve", "--listen", self.endpoint)
        session = requests.Session()
        session.trust_env = False
        deadline = time.monotonic() + self.READY_TIMEOUT
        while True:  # bounded readiness polling (start-up only)
            if self.proc.poll() is not None:
                self.expected_exit = True
                raise RuntimeError(f"server exited with {self.proc.returncode} during start-up\n{self.log_tail()}")
            try:
                if session.get(f"http://{self.endpoint}/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError(f"server not healthy within {self.READY_TIMEOUT}s\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int | None:
        if self.proc is None:
            return None
        self.expected_exit = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self, hard: bool = False, same_port: bool = True) -> "ServerProcess":
        """Stops (SIGTERM, or SIGKILL when hard) and starts again on the same data dir/database."""
        port = self.port
        self.kill9() if hard else self.stop()
        try:
            return self.start(port if same_port else None)
        except RuntimeError:
            if not same_port:
                raise
            return self.start(None)  # the old port may not be reusable yet

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def died_unexpectedly(self) -> bool:
        return self.proc is not None and not self.expected_exit and self.proc.poll() is not None

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- credentials and CLI
    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "root-credentials.json"

    def admin_key(self) -> tuple[str, str]:
        if self.root_key:
            return self.root_key
        creds = json.loads(self.credentials_file.read_text())
        return creds["AccessKeyId"], creds["AccessKeySecret"]

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.binary), *args, *self.storage_args()]
        res = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=timeout,
                             cwd=self.data_dir)
        if check and res.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def create_user(self, name: str | None = None, admin: bool = False, role: str | None = None) -> dict:
        args = ["users", "create", name or uniq("user-"), "--json"]
        if admin:
            args.append("--admin")
        if role:
            args += ["--role", role]
        out = self.cli(*args).stdout.strip()
        return json.loads(out)

    # -- callers
    def caller(self, flavor: str = "v3", key: tuple[str, str] | None = None):
        ak, secret = key or self.admin_key()
        return make_caller(flavor, self.endpoint, ak, secret)


# --------------------------------------------------------------------------- assertions

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PORTFOLIO_ID_RE = re.compile(r"^port-[0-9a-z]{14}$")


def expect_error(status: int, code: str, fn, *args, **kwargs) -> ApiError:
    """Calls fn and asserts it fails with exactly this HTTP status and error Code."""
    try:
        result = fn(*args, **kwargs)
    except ApiError as e:
        assert (e.status, e.code) == (status, code), f"expected {status} {code}, got {e}"
        return e
    raise AssertionError(f"expected {status} {code}, but the call succeeded: {result!r}")


def parse_time(s: str):
    import datetime as dt

    assert TIME_RE.match(s or ""), f"bad time format {s!r}"
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
