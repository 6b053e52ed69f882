"""Fixtures for the conformance suite: the real server binary + official SDK clients.

Environment:
  SERVICECATALOG_BIN             server binary (default target/release/servicecatalog)
  SERVICECATALOG_TEST_POSTGRES   postgres://... : also run every server test against
                                 PostgreSQL (a fresh database per server), else those
                                 parametrisations are skipped.
"""
from __future__ import annotations

import os

import pytest

import sclib
from sclib import FLAVORS, PgDatabases, ServerProcess

sclib.unset_proxies()

_SERVERS: list[ServerProcess] = []
BACKENDS = ("sqlite", "postgres")


# --------------------------------------------------------------------------- storage backends


@pytest.fixture(scope="session")
def pg_databases():
    url = os.environ.get("SERVICECATALOG_TEST_POSTGRES")
    if not url:
        yield None
        return
    dbs = PgDatabases(url)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request, pg_databases):
    """'sqlite' (default data dir storage) or 'postgres' (needs SERVICECATALOG_TEST_POSTGRES)."""
    if request.param == "postgres" and pg_databases is None:
        pytest.skip("SERVICECATALOG_TEST_POSTGRES not set")
    return request.param


@pytest.fixture(scope="session")
def server_factory(backend, pg_databases, tmp_path_factory):
    """start(root_key=None, env=None, args=None) -> a started ServerProcess on a fresh data dir (+ fresh database)."""
    started: list[ServerProcess] = []

    def start(root_key=None, env=None, args=None) -> ServerProcess:
        data_dir = tmp_path_factory.mktemp(f"server-{backend}") / "data"
        database = pg_databases.create() if backend == "postgres" else None
        srv = ServerProcess(data_dir, database=database, env=env, root_key=root_key, args=args)
        started.append(srv)
        _SERVERS.append(srv)
        return srv.start()

    yield start
    stop_servers(started, "session")


def stop_servers(servers: list[ServerProcess], during: str) -> None:
    """Stops `servers` (forgetting them), failing the test run if one of them died on its own."""
    crashed = [s for s in servers if s.died_unexpectedly()]
    for s in servers:
        s.stop()
        if s in _SERVERS:
            _SERVERS.remove(s)
    if crashed:
        pytest.fail(f"server died during the {during}:\n" + "\n\n".join(s.log_tail() for s in crashed),
                    pytrace=False)


@pytest.fixture(scope="module", autouse=True)
def stop_module_servers():
    """Stops the servers a module's tests and fixtures started (not the session's shared ones) when the module's
    tests end, so that servers no later test uses hold no PostgreSQL connections."""
    before = list(_SERVERS)
    yield
    stop_servers([s for s in _SERVERS if s not in before and not s.shared], "module")


@pytest.fixture(scope="session")
def server(server_factory) -> ServerProcess:
    """The shared server of the session (one per backend)."""
    srv = server_factory()
    srv.shared = True
    return srv


@pytest.fixture
def fresh_server(server_factory):
    """A private server for tests that restart/kill it; stopped at teardown."""
    started = []

    def start(**kw):
        srv = server_factory(**kw)
        started.append(srv)
        return srv

    yield start
    for s in started:
        s.stop()


# --------------------------------------------------------------------------- clients


@pytest.fixture(scope="session")
def admin_key(server):
    return server.admin_key()


def admin_caller(flavor: str):
    """A session fixture: a caller of `flavor` (see sclib.make_caller) with the admin key."""
    @pytest.fixture(scope="session")
    def caller(server, admin_key):
        return sclib.make_caller(flavor, server.endpoint, *admin_key)
    return caller


admin_v3 = admin_caller("v3")
admin_v1 = admin_caller("v1")
admin_core = admin_caller("core")
raw = admin_caller("raw-v3")  # our own V3 signer over requests
raw_v1 = admin_caller("raw-v1")


@pytest.fixture(params=FLAVORS)
def flavor(request):
    return request.param


@pytest.fixture
def admin(flavor, admin_v3, admin_v1, admin_core):
    """The admin client, once per SDK flavour (v3, v1, core)."""
    return {"v3": admin_v3, "v1": admin_v1, "core": admin_core}[flavor]


@pytest.fixture
def make_user(server):
    """make_user(admin=False, role=None) -> dict from `servicecatalog users create --json`."""
    return lambda admin=False, role=None, name=None: server.create_user(name, admin=admin, role=role)


@pytest.fixture
def end_user(server, make_user):
    """An end user (created with `users create`): (user-info dict, caller factory by flavour)."""
    user = make_user()
    key = (user["AccessKeyId"], user["AccessKeySecret"])
    return user, lambda flavor="v3": server.caller(flavor, key)


# --------------------------------------------------------------------------- reporting


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for srv in list(_SERVERS):
            report.sections.append((f"servicecatalog log ({srv.log_path.name})", srv.log_tail(60)))
    return report
