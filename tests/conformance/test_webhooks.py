"""Webhooks (extension actions CreateWebhook, ListWebhooks, DeleteWebhook, ListWebhookDeliveries):
administrators register endpoints; each task's end and each plan's submission for approval and
decision is posted to the matching ones, signed (HMAC-SHA256 over timestamp and body), from a
durable outbox with retries, each attempt visible. A receiver that fails twice still gets the
event, once delivered; webhooks of another portfolio or other event types get nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from sclib import expect_error, serve, uniq
from test_plans import SITE_TF, approval, create_plan, user, wait_plan
from test_provisioning import HELLO_TF, PARTIAL_TF, launch, make_product, needs_terraform, wait_task

DEADLINE = 60


class Receiver:
    """A local HTTP endpoint recording each POST; answers 500 to the first `failures` posts of
    each delivery id."""

    def __init__(self, failures: int = 0):
        self.failures = failures
        self.posts: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                post = {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "path": self.path}
                with receiver.lock:
                    receiver.posts.append(post)
                    seen = sum(1 for p in receiver.posts
                               if p["headers"].get("x-servicecatalog-delivery") == post["headers"].get("x-servicecatalog-delivery"))
                status = 500 if seen <= receiver.failures else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = serve(Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def events(self, event_type: str | None = None) -> list[dict]:
        """The bodies of the posts answered 2xx, in order."""
        with self.lock:
            posts = list(self.posts)
        counts: dict[str, int] = {}
        out = []
        for p in posts:
            d = p["headers"]["x-servicecatalog-delivery"]
            counts[d] = counts.get(d, 0) + 1
            if counts[d] > self.failures:
                body = json.loads(p["body"])
                if event_type is None or body["EventType"] == event_type:
                    out.append(body)
        return out

    def wait_for(self, predicate, what: str) -> list[dict]:
        end = time.monotonic() + DEADLINE
        while True:
            events = self.events()
            if predicate(events):
                return events
            assert time.monotonic() < end, f"{what}: got {events}"
            time.sleep(0.1)

    def close(self):
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def hook_server(server_factory):
    """A server that may post to loopback endpoints, retrying after 100 ms (doubling), 5 attempts."""
    return server_factory(args=["--webhook-targets", "http://127.0.0.1", "--webhook-retry-ms", "100", "--webhook-attempts", "5"])


@pytest.fixture(scope="module")
def admin(hook_server):
    return hook_server.caller("raw-v3")


def check_signature(post: dict, secret: str) -> None:
    headers = post["headers"]
    expected = hmac.new(secret.encode(), f"{headers['x-servicecatalog-timestamp']}.{post['body']}".encode(),
                        hashlib.sha256).hexdigest()
    assert headers["x-servicecatalog-signature"] == f"sha256={expected}", headers
    assert abs(int(headers["x-servicecatalog-timestamp"]) - time.time()) < 300, headers


def settled_delivery(admin, hook: str) -> dict:
    """The one delivery of webhook `hook`, once it is no longer Pending (bounded)."""
    end = time.monotonic() + DEADLINE
    while True:
        [d] = admin.call("ListWebhookDeliveries", {"WebhookId": hook})["Deliveries"]
        if d["Status"] != "Pending":
            return d
        assert time.monotonic() < end, d
        time.sleep(0.2)


@needs_terraform
def test_task_events_reach_matching_webhooks_signed_once_even_through_failures(hook_server, admin):
    sdk = hook_server.caller("v3")
    info, owner, _ = user(hook_server)
    product = make_product(sdk, HELLO_TF, users=[info])
    broken = make_product(sdk, PARTIAL_TF, portfolio_id=product.portfolio_id)
    other = make_product(sdk, HELLO_TF)
    flaky, steady, elsewhere, failures_only = Receiver(failures=2), Receiver(), Receiver(), Receiver()
    try:
        made = {}
        for name, receiver, extra in [
            ("flaky", flaky, {}),
            ("steady", steady, {"PortfolioId": product.portfolio_id}),
            ("elsewhere", elsewhere, {"PortfolioId": other.portfolio_id}),
            ("failures", failures_only, {"EventTypes": ["TaskFailed"]}),
        ]:
            r = admin.call("CreateWebhook", {"Url": f"{receiver.url}/{name}", "Description": name, **extra})
            assert r["WebhookId"].startswith("wh-") and len(r["Secret"]) >= 32, r
            made[name] = r

        pp_id, task_id = launch(owner, product, {"owner": "ops"})
        assert wait_task(owner, task_id)["Status"] == "Succeeded"
        _, failing = launch(owner, broken)
        assert wait_task(owner, failing)["Status"] == "Failed"

        for receiver in (flaky, steady):
            events = receiver.wait_for(lambda e: len(e) >= 2, "a succeeded and a failed task")
            by_task = {e["TaskId"]: e for e in events}
            assert len(events) == 2 and set(by_task) == {task_id, failing}, events
            ok = by_task[task_id]
            assert (ok["EventType"], ok["TaskStatus"], ok["TaskType"], ok["ProvisionedProductId"], ok["PortfolioId"]) == \
                ("TaskSucceeded", "Succeeded", "LaunchProduct", pp_id, product.portfolio_id), ok
            assert ok["EventId"].startswith("evt-") and ok["EventTime"].endswith("Z"), ok
            assert by_task[failing]["EventType"] == "TaskFailed" and by_task[failing]["StatusMessage"], by_task[failing]
        failed = failures_only.wait_for(lambda e: len(e) >= 1, "the failed task")
        assert [e["TaskId"] for e in failed] == [failing], failed

        # Signed with each webhook's own secret; the retries carry the same delivery id and event.
        with flaky.lock:
            posts = list(flaky.posts)
        assert len(posts) == 6, [p["headers"].get("x-servicecatalog-delivery") for p in posts]
        for post in posts:
            check_signature(post, made["flaky"]["Secret"])
            assert post["headers"]["x-servicecatalog-event"] in ("TaskSucceeded", "TaskFailed")
        with steady.lock:
            check_signature(steady.posts[0], made["steady"]["Secret"])

        # The attempts are visible; the delivery is Delivered on the third.
        r = admin.call("ListWebhookDeliveries", {"WebhookId": made["flaky"]["WebhookId"], "PageSize": 10})
        assert r["TotalCount"] == 2, r
        for d in r["Deliveries"]:
            assert d["Status"] == "Delivered", d
            assert [(a["Attempt"], a["StatusCode"]) for a in d["Attempts"]] == [(1, 500), (2, 500), (3, 204)], d
            assert "HTTP 500" in d["Attempts"][0]["Error"] and d["Attempts"][2]["Error"] == ""
            assert d["Payload"]["EventId"] == d["EventId"]
        # Nothing for another portfolio's webhook.
        time.sleep(0.5)
        assert elsewhere.events() == [] and elsewhere.posts == []
        assert admin.call("ListWebhookDeliveries", {"WebhookId": made["elsewhere"]["WebhookId"]})["TotalCount"] == 0

        # Listed without secrets; deleted webhooks get nothing more.
        listed = {w["WebhookId"]: w for w in admin.call("ListWebhooks")["Webhooks"]}
        assert listed[made["failures"]["WebhookId"]]["EventTypes"] == ["TaskFailed"]
        assert listed[made["steady"]["WebhookId"]]["PortfolioId"] == product.portfolio_id
        assert made["flaky"]["Secret"] not in json.dumps(listed)
        for r in made.values():
            admin.call("DeleteWebhook", {"WebhookId": r["WebhookId"]})
        expect_error(404, "EntityNotExists.Webhook", admin.call, "DeleteWebhook", {"WebhookId": made["flaky"]["WebhookId"]})
        _, third = launch(owner, product, {"owner": "ops"})
        wait_task(owner, third)
        time.sleep(1.5)
        assert third not in {e.get("TaskId") for e in steady.events()}
    finally:
        for receiver in (flaky, steady, elsewhere, failures_only):
            receiver.close()


@needs_terraform
def test_a_delivery_that_never_succeeds_fails_after_its_attempts(hook_server, admin):
    sdk = hook_server.caller("v3")
    info, owner, _ = user(hook_server)
    product = make_product(sdk, HELLO_TF, users=[info])
    down = Receiver(failures=100)
    try:
        hook = admin.call("CreateWebhook", {"Url": down.url, "PortfolioId": product.portfolio_id})["WebhookId"]
        _, task_id = launch(owner, product, {"owner": "ops"})
        wait_task(owner, task_id)
        d = settled_delivery(admin, hook)
        assert d["Status"] == "Failed" and len(d["Attempts"]) == 5, d
        assert all(a["StatusCode"] == 500 for a in d["Attempts"]), d
        assert admin.call("ListWebhookDeliveries", {"Status": "Failed", "WebhookId": hook})["TotalCount"] == 1
    finally:
        down.close()


@needs_terraform
def test_plan_submission_and_decision_are_told(hook_server, admin):
    sdk = hook_server.caller("v3")
    (owner, owner_c, _), (approver, approver_c, _) = user(hook_server), user(hook_server)
    product = make_product(sdk, SITE_TF, users=[owner, approver])
    approval(sdk, product, ["LaunchProduct"], [{"Type": "RamUser", "Id": approver["PrincipalId"]}])
    receiver = Receiver()
    try:
        admin.call("CreateWebhook", {"Url": receiver.url, "PortfolioId": product.portfolio_id,
                                     "EventTypes": ["PlanAwaitingApproval", "PlanApproved", "PlanRejected"]})
        first, _ = create_plan(owner_c, product, params={"content": "v1", "token": "t0p-s3cret"})
        second, _ = create_plan(owner_c, product, params={"content": "v2", "token": "t0p-s3cret"})
        for plan in (first, second):
            wait_plan(owner_c, plan)
        receiver.wait_for(lambda e: len(e) >= 2, "two plans waiting")
        approver_c.call("ApproveProvisionedProductPlan", {"PlanId": first, "ApprovalAction": "Approve", "Comment": "go"})
        approver_c.call("ApproveProvisionedProductPlan", {"PlanId": second, "ApprovalAction": "Reject", "Comment": "no"})
        events = receiver.wait_for(lambda e: len(e) >= 4, "two decisions")
        seen = sorted((e["PlanId"], e["EventType"]) for e in events)
        assert seen == sorted([(first, "PlanAwaitingApproval"), (second, "PlanAwaitingApproval"),
                               (first, "PlanApproved"), (second, "PlanRejected")]), events
        approved = next(e for e in events if e["EventType"] == "PlanApproved")
        assert (approved["OwnerPrincipalId"], approved["OperatorPrincipalName"], approved["Comment"]) == \
            (owner["PrincipalId"], approver["UserName"], "go"), approved
        assert "t0p-s3cret" not in json.dumps(events)
    finally:
        receiver.close()


def test_webhooks_are_refused_outside_the_allowed_targets_and_to_end_users(hook_server, admin, server):
    e = expect_error(400, "InvalidParameter.Url", admin.call, "CreateWebhook", {"Url": "http://10.0.0.1/hook"})
    assert "--webhook-targets" in e.message
    expect_error(400, "InvalidParameter.Url", admin.call, "CreateWebhook", {"Url": "http://127.0.0.1.attacker.net/x"})
    expect_error(400, "InvalidParameter.Url", admin.call, "CreateWebhook", {"Url": "ftp://127.0.0.1/x"})
    expect_error(400, "InvalidParameter.EventTypes", admin.call, "CreateWebhook",
                 {"Url": "http://127.0.0.1:9/x", "EventTypes": ["TaskExploded"]})
    expect_error(404, "EntityNotExists.Portfolio", admin.call, "CreateWebhook",
                 {"Url": "http://127.0.0.1:9/x", "PortfolioId": "port-missing0000000"})
    expect_error(400, "InvalidParameter.Status", admin.call, "ListWebhookDeliveries", {"Status": "Lost"})
    before = admin.call("ListWebhooks")["Webhooks"]
    _, _, user_raw = user(hook_server)
    expect_error(403, "Forbidden.AdministratorOnly", user_raw.call, "CreateWebhook", {"Url": "http://127.0.0.1:9/x"})
    expect_error(403, "Forbidden.AdministratorOnly", user_raw.call, "ListWebhooks")
    assert admin.call("ListWebhooks")["Webhooks"] == before
    # A server started without --webhook-targets sends none.
    e = expect_error(400, "InvalidParameter.Url", server.caller("raw-v3").call, "CreateWebhook", {"Url": "http://127.0.0.1:9/x"})
    assert "sends no webhooks" in e.message


@needs_terraform
def test_a_webhook_outside_narrowed_targets_gets_nothing(fresh_server):
    """Targets are checked at each attempt: narrowing --webhook-targets stops webhooks made before."""
    srv = fresh_server(args=["--webhook-targets", "http://127.0.0.1", "--webhook-retry-ms", "100", "--webhook-attempts", "2"])
    receiver = Receiver()
    try:
        hook = srv.caller("raw-v3").call("CreateWebhook", {"Url": receiver.url})["WebhookId"]
        srv.stop()
        srv.extra_args = ["--webhook-targets", "https://hooks.example.com/", "--webhook-retry-ms", "100", "--webhook-attempts", "2"]
        srv.start()
        info, owner, _ = user(srv)
        product = make_product(srv.caller("v3"), HELLO_TF, users=[info])
        _, task_id = launch(owner, product, {"owner": "ops"})
        wait_task(owner, task_id)
        admin = srv.caller("raw-v3")
        d = settled_delivery(admin, hook)
        assert d["Status"] == "Failed" and "--webhook-targets" in d["Attempts"][0]["Error"], d
        assert receiver.posts == []
    finally:
        receiver.close()
