"""Minimal, dependency-free Alibaba Cloud RPC request signer for raw tests.

Implements the two schemes the official Python SDK emits (see PROTOCOL.md §4):

* V3 ``ACS3-HMAC-SHA256`` in the ``Authorization`` header;
* V1 ``HMAC-SHA1`` as the ``Signature`` query parameter.

``build_v3`` / ``build_v1`` return a :class:`RawRequest` that can be sent any
number of times (that is how the replay tests work) and tampered with.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import hashlib
import hmac
import uuid
from typing import Iterable, Mapping
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

API_VERSION = "2021-09-01"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
USER_AGENT = "servicecatalog-conformance/1 (raw signer)"


def pct(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8; only ``A-Za-z0-9-_.~`` stay literal."""
    return quote(value, safe="", encoding="utf-8")


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)


def acs_time(t: _dt.datetime | None = None) -> str:
    t = t or utc_now()
    return t.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_nonce() -> str:
    return uuid.uuid4().hex


def _pairs(params: Mapping[str, object] | Iterable[tuple[str, object]] | None) -> list[tuple[str, str]]:
    if not params:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(k), str(v)) for k, v in items]


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(pairs))


def v3_canonical_request(method: str, path: str, query: Iterable[tuple[str, str]],
                         headers: Mapping[str, str], signed: list[str], payload_hash: str) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    canon_headers = "".join(f"{h}:{lower[h].strip()}\n" for h in signed)
    return "\n".join([method.upper(), path or "/", canonical_query(query), canon_headers,
                      ";".join(signed), payload_hash])


def v3_signature(secret: str, canonical_request: str) -> str:
    sts = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    return hmac.new(secret.encode("utf-8"), sts.encode("utf-8"), hashlib.sha256).hexdigest()


def v3_authorization(method: str, path: str, query: Iterable[tuple[str, str]], headers: Mapping[str, str],
                     body: bytes, access_key_id: str, secret: str, unsigned: Iterable[str] = ()) -> str:
    """Signs every header given (names lower-cased) except `unsigned`, as the SDK does."""
    skip = {"authorization", *(h.lower() for h in unsigned)}
    signed = sorted(k.lower() for k in headers if k.lower() not in skip)
    canon = v3_canonical_request(method, path, query, headers, signed, hashlib.sha256(body).hexdigest())
    sig = v3_signature(secret, canon)
    return f"ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={';'.join(signed)},Signature={sig}"


def v1_signature(method: str, params: Iterable[tuple[str, str]], secret: str) -> str:
    params = [(k, v) for k, v in params if k != "Signature"]
    sts = f"{method.upper()}&{pct('/')}&{pct(canonical_query(params))}"
    mac = hmac.new((secret + "&").encode("utf-8"), sts.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(mac).decode("ascii")


@dataclasses.dataclass
class RawRequest:
    method: str
    endpoint: str           # host:port
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    @property
    def url(self) -> str:
        q = urlencode(self.query)
        return f"http://{self.endpoint}/" + (f"?{q}" if q else "")

    def resign_v3(self, access_key_id: str, secret: str) -> "RawRequest":
        """Recomputes x-acs-content-sha256 and the V3 Authorization after a test edited the request."""
        self.headers.pop("Authorization", None)
        self.headers["x-acs-content-sha256"] = hashlib.sha256(self.body).hexdigest()
        self.headers["Authorization"] = v3_authorization(self.method, "/", self.query, self.headers, self.body,
                                                         access_key_id, secret)
        return self

    def send(self, session=None, timeout: float = 30):
        import requests  # only needed when actually sending

        s = session or _session()
        return s.request(self.method, self.url, headers=self.headers, data=self.body, timeout=timeout,
                         allow_redirects=False)


_SESSION = None


def _session():
    global _SESSION
    if _SESSION is None:
        import requests

        _SESSION = requests.Session()
        _SESSION.trust_env = False  # never go through an HTTP(S)_PROXY for loopback
    return _SESSION


def build_v3(endpoint: str, access_key_id: str, secret: str, action: str,
             params: Mapping[str, object] | None = None, *, placement: str = "body", method: str = "POST",
             version: str = API_VERSION, date: str | None = None, nonce: str | None = None,
             user_agent: str = USER_AGENT, extra_headers: Mapping[str, str] | None = None,
             unsigned: Iterable[str] = ()) -> RawRequest:
    """Builds a V3-signed request the way the SDK does (placement 'body' or 'query')."""
    pairs = sorted(_pairs(params))
    query = pairs if placement == "query" else []
    body = urlencode(pairs).encode("utf-8") if placement == "body" and pairs else b""
    headers = {
        "host": endpoint,
        "x-acs-version": version,
        "x-acs-action": action,
        "user-agent": user_agent,
        "x-acs-date": date or acs_time(),
        "x-acs-signature-nonce": nonce or new_nonce(),
        "accept": "application/json",
    }
    if body:
        headers["content-type"] = "application/x-www-form-urlencoded"
    headers["x-acs-content-sha256"] = hashlib.sha256(body).hexdigest()
    headers["x-acs-credentials-provider"] = "static_ak"
    if extra_headers:
        headers.update({k.lower(): v for k, v in extra_headers.items()})
    headers["Authorization"] = v3_authorization(method, "/", query, headers, body, access_key_id, secret, unsigned)
    return RawRequest(method, endpoint, list(query), headers, body)


def build_v1(endpoint: str, access_key_id: str, secret: str, action: str,
             params: Mapping[str, object] | None = None, *, placement: str = "body", method: str = "POST",
             version: str = API_VERSION, timestamp: str | None = None, nonce: str | None = None,
             user_agent: str = USER_AGENT) -> RawRequest:
    """Builds a V1 (HMAC-SHA1) request the way the SDK does with signature_algorithm='v2'."""
    pairs = sorted(_pairs(params))
    query = [("Action", action), ("Format", "json"), ("Version", version),
             ("Timestamp", timestamp or acs_time()), ("SignatureNonce", nonce or new_nonce())]
    body_pairs: list[tuple[str, str]] = []
    if placement == "query":
        query += pairs
    else:
        body_pairs = pairs
    query += [("SignatureMethod", "HMAC-SHA1"), ("SignatureVersion", "1.0"), ("AccessKeyId", access_key_id)]
    sig = v1_signature(method, query + body_pairs, secret)
    query.append(("Signature", sig))
    body = urlencode(body_pairs).encode("utf-8") if body_pairs else b""
    headers = {"host": endpoint, "x-acs-version": version, "x-acs-action": action, "user-agent": user_agent,
               "x-acs-credentials-provider": "static_ak"}
    if body:
        headers["content-type"] = "application/x-www-form-urlencoded"
    return RawRequest(method, endpoint, query, headers, body)


# ---- verification of captured requests (used to check the signer against the SDK) ----

def verify_v3(method: str, target: str, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    lower = {k.lower(): v for k, v in headers.items()}
    algo, rest = lower["authorization"].split(" ", 1)
    parts = dict(p.split("=", 1) for p in rest.split(","))
    signed = parts["SignedHeaders"].split(";")
    u = urlsplit(target)
    query = parse_qsl(u.query, keep_blank_values=True)
    canon = v3_canonical_request(method, u.path or "/", query, lower, signed, hashlib.sha256(body).hexdigest())
    return (algo == "ACS3-HMAC-SHA256"
            and lower.get("x-acs-content-sha256") == hashlib.sha256(body).hexdigest()
            and hmac.compare_digest(v3_signature(secret, canon), parts["Signature"]))


def verify_v1(method: str, target: str, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    lower = {k.lower(): v for k, v in headers.items()}
    params = parse_qsl(urlsplit(target).query, keep_blank_values=True)
    if body and lower.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        params += parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    sent = dict(params).get("Signature", "")
    return hmac.compare_digest(v1_signature(method, params, secret), sent)
