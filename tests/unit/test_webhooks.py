"""Standard Webhooks signing: what we send verifies with the public `standardwebhooks` library."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from rightsdesk.platform import webhooks

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    data=st.dictionaries(st.text(max_size=20), json_values, max_size=6),
    event_type=st.sampled_from([webhooks.EVENT_FORWARDED, webhooks.EVENT_CANCELLED, webhooks.EVENT_OVERDUE]),
    parts=st.lists(st.text(), min_size=1, max_size=3),
)
def test_any_body_verifies_with_the_standardwebhooks_library(data, event_type, parts):
    body = webhooks.envelope(event_type, data)
    msg_id = webhooks.webhook_id(*parts)
    headers = webhooks.signed_headers([SECRET], msg_id, body)
    assert Webhook(SECRET).verify(body, headers) == json.loads(body)


@settings(max_examples=50, deadline=None)
@given(body=st.binary(min_size=1).filter(lambda b: b.decode("utf-8", "ignore") == b.decode("utf-8", "replace")))
def test_arbitrary_utf8_bytes_verify_too(body):
    headers = webhooks.signed_headers([SECRET], "msg_x", body)
    Webhook(SECRET).verify(body, headers, json_parse=False)


def test_during_rotation_either_secret_verifies():
    body = webhooks.envelope(webhooks.EVENT_FORWARDED, {"request_id": "dsr_1"})
    headers = webhooks.signed_headers([SECRET, OTHER], "msg_1", body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, OTHER):
        Webhook(secret).verify(body, headers)


def test_a_tampered_body_or_another_secret_fails():
    body = webhooks.envelope(webhooks.EVENT_FORWARDED, {"request_id": "dsr_1"})
    headers = webhooks.signed_headers([SECRET], "msg_1", body)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"dsr_1", b"dsr_2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER).verify(body, headers)


def test_unpadded_secrets_sign_like_the_library():
    unpadded = "whsec_" + base64.b64encode(b"x" * 31).decode().rstrip("=")
    headers = webhooks.signed_headers([unpadded], "msg_1", b"{}")
    Webhook(unpadded).verify(b"{}", headers, json_parse=False)


def test_the_header_timestamp_is_the_wall_clock_even_when_the_domain_clock_moved(monkeypatch):
    from rightsdesk.kernel import clock

    monkeypatch.setattr(clock, "_offset_seconds", 86400.0)
    headers = webhooks.signed_headers([SECRET], "msg_1", b"{}")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5


def test_webhook_ids_are_stable_and_distinct():
    assert webhooks.webhook_id("dlv_a") == webhooks.webhook_id("dlv_a")
    assert webhooks.webhook_id("dlv_a") != webhooks.webhook_id("dlv_b")
    assert webhooks.webhook_id("dlv_a").startswith("msg_")


def test_no_secret_is_an_error():
    with pytest.raises(ValueError):
        webhooks.signed_headers([], "msg_1", b"{}")


# ------------------------------------------------------------------ the HTTP call


class _Endpoint(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        _Endpoint.seen.append({"path": self.path, "host": self.headers["Host"], "body": self.rfile.read(length)})
        self.send_response(_Endpoint.answers.pop(0) if _Endpoint.answers else 204)
        self.send_header("Location", "http://169.254.169.254/")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Endpoint.answers, _Endpoint.seen = [], []
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_post_reports_the_status_and_follows_no_redirect(endpoint):
    _Endpoint.answers = [302]
    result = webhooks.post(endpoint + "/hook?x=1", b"{}", {"webhook-id": "msg_1"}, allow_loopback_http=True)
    assert result.status == 302 and not result.ok and result.cause == "http_302"
    assert len(_Endpoint.seen) == 1 and _Endpoint.seen[0]["path"] == "/hook?x=1"
    assert _Endpoint.seen[0]["host"].startswith("localhost:"), "the Host header keeps the URL's name"


def test_post_only_2xx_is_ok(endpoint):
    _Endpoint.answers = [204, 410]
    assert webhooks.post(endpoint, b"{}", {}, allow_loopback_http=True).ok
    gone = webhooks.post(endpoint, b"{}", {}, allow_loopback_http=True)
    assert gone.gone and not gone.ok


def test_post_refuses_loopback_unless_the_local_run_allows_it(endpoint):
    result = webhooks.post(endpoint, b"{}", {}, allow_loopback_http=False)
    assert result.failure == "refused_address" and not _Endpoint.seen


def test_post_reports_connection_failures():
    result = webhooks.post("http://127.0.0.1:9/", b"{}", {}, allow_loopback_http=True)
    assert result.status is None and result.failure == "connection"


# ------------------------------------------------------------------ https: the checked address, the URL's name


def _certificate(tmp_path, host: str):
    """A self-signed certificate for `host` (key and cert files)."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{host}.pem", tmp_path / f"{host}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def tls_endpoint(tmp_path, monkeypatch):
    """An https endpoint on 127.0.0.1 whose certificate names `hooks.controller.test`."""
    import ssl

    cert_file, key_file = _certificate(tmp_path, "hooks.controller.test")
    server = http.server.HTTPServer(("127.0.0.1", 0), _Endpoint)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Endpoint.answers, _Endpoint.seen = [], []
    client = ssl.create_default_context(cafile=str(cert_file))
    monkeypatch.setattr(webhooks, "_tls", lambda: client)
    port = server.server_address[1]
    # As if DNS said hooks.controller.test is at 127.0.0.1 and the guard approved it.
    monkeypatch.setattr(
        webhooks.ssrf, "resolve_public", lambda url, allow: (url.split("/")[2].split(":")[0], port, "127.0.0.1")
    )
    yield port
    server.shutdown()
    server.server_close()


def test_https_connects_to_the_checked_address_and_verifies_the_certificate_for_the_name(tls_endpoint):
    result = webhooks.post(f"https://hooks.controller.test:{tls_endpoint}/in", b"{}", {}, allow_loopback_http=False)
    assert result.ok
    assert _Endpoint.seen[0]["host"] == f"hooks.controller.test:{tls_endpoint}"


def test_https_refuses_a_certificate_for_another_name(tls_endpoint):
    result = webhooks.post(f"https://other.controller.test:{tls_endpoint}/in", b"{}", {}, allow_loopback_http=False)
    assert result.failure == "tls" and not _Endpoint.seen


# ------------------------------------------------------------------ any secret, any rotation

secrets_ = st.binary(min_size=24, max_size=64).map(lambda key: "whsec_" + base64.b64encode(key).decode())


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(secrets_, min_size=1, max_size=3, unique=True),
    body=st.text(max_size=1024).map(str.encode),
    msg_id=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
)
def test_every_secret_of_a_rotation_verifies_any_body_and_a_stranger_does_not(keys, body, msg_id):
    headers = webhooks.signed_headers(keys, msg_id, body)
    assert len(headers["webhook-signature"].split(" ")) == len(keys)
    for key in keys:
        Webhook(key).verify(body, headers, json_parse=False)
    stranger = "whsec_" + base64.b64encode(b"s" * 32).decode()
    if stranger not in keys:
        with pytest.raises(WebhookVerificationError):
            Webhook(stranger).verify(body, headers, json_parse=False)
