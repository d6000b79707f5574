"""Every page keeps the subject's chosen language, on every path and every error, over real HTTP.

The browser says `Accept-Language` of another language throughout, so a page in the chosen
language proves the choice was carried (by a link, a form action, a redirect), not guessed. Also:
`rightsdesk --local` finds this stack by the same port variables `make run` reads, and the policy
archive answers a browser with a page and an API client with JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from tests.support.stack import CLI

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LANGUAGES = ("en", "de", "sl")
OTHER = {"en": "de", "de": "sl", "sl": "en"}  # what the browser claims to prefer instead
POLICY_TEXT = b"<h1>Privacy</h1>\n<p>Transcripts are kept 30 days.</p>\n"
# A word of each page in each language, so "in the chosen language" is more than the lang attribute.
WORDS = {
    "form": {"en": "request", "de": "Anfrage", "sl": "zahtev"},
    "verify": {"en": "Confirm", "de": "Bestätig", "sl": "Potrdi"},
}


def rightsdesk(stack, *args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **variables}
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "RIGHTSDESK_TABLE",
        "RIGHTSDESK_STACK",
        "RIGHTSDESK_DEBUG",
        "RIGHTSDESK_LOCAL_URL",
        "RIGHTSDESK_LOCAL_MOTO_URL",
        "MAIL_QUEUE_URL",
        "DELIVERY_QUEUE_URL",
        "HASH_KEY_SECRET_ARN",
    ):
        if name not in variables:
            env.pop(name, None)
    return subprocess.run(
        [*CLI, "--local", *args], capture_output=True, text=True, timeout=120, env=env, cwd=REPO, check=False
    )


def ports_of(stack) -> dict[str, str]:
    """The variables `make run` would have been started with for this stack."""
    return {
        "RIGHTSDESK_LOCAL_PORT": str(urlsplit(stack.base_url).port),
        "RIGHTSDESK_LOCAL_MOTO_PORT": str(urlsplit(stack.moto_url).port),
    }


class Browser:
    """A browser that prefers another language than the one the subject chose on the page."""

    def __init__(self, stack, lang: str):
        self.stack, self.lang = stack, lang
        self.http = requests.Session()
        self.http.headers.update({"Accept": "text/html,application/xhtml+xml", "Accept-Language": OTHER[lang]})

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(urljoin(self.stack.base_url, path), timeout=30, allow_redirects=False, **kwargs)

    def post(self, path: str, data: dict) -> requests.Response:
        return self.http.post(urljoin(self.stack.base_url, path), data=data, timeout=30, allow_redirects=False)

    def follow(self, response: requests.Response) -> requests.Response:
        assert response.status_code == 303, response.text
        location = response.headers["Location"]
        assert f"lang={self.lang}" in location, location
        return self.get(urlsplit(location).path + "?" + urlsplit(location).query)


def in_language(response: requests.Response, lang: str) -> str:
    html = response.text
    assert response.headers["Content-Type"].startswith("text/html"), response.text[:200]
    assert f'<html lang="{lang}">' in html
    assert "sha256-" in response.headers["Content-Security-Policy"], "the pages' CSP, not the JSON one"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    main = html.split("<main", 1)[1].split("</main>", 1)[0]
    # Every way on from the page (links, form actions) carries the language.
    for target in re.findall(r'href="(/[^"#]*)"', main) + re.findall(r'method="post" action="(/[^"#]*)"', main):
        assert f"lang={lang}" in target.replace("&amp;", "&"), target
    for _ in re.findall(r'<form method="get"', main):  # a GET form sends its fields: lang among them
        assert f'<input type="hidden" name="lang" value="{lang}">' in main
    return html


def form_action(html: str) -> str:
    return re.search(r'<form method="post" action="([^"]+)"', html).group(1).replace("&amp;", "&")


@pytest.fixture(scope="module")
def published_policy(stack, tmp_path_factory):
    folder = tmp_path_factory.mktemp("policy")
    (folder / "summary.md").write_text("Shorter retention.")
    (folder / "summary-de.md").write_text("Kürzere Aufbewahrung.")
    (folder / "policy.html").write_bytes(POLICY_TEXT)
    doc = f"privacy-{uuid.uuid4().hex[:6]}"
    result = rightsdesk(
        stack,
        "--json",
        "policy",
        "publish",
        "--doc",
        doc,
        "--version",
        "2026-12",
        "--url",
        "https://example.com/privacy",
        "--summary-file",
        str(folder / "summary.md"),
        "--summary-file-de",
        str(folder / "summary-de.md"),
        "--text-file",
        str(folder / "policy.html"),
        **ports_of(stack),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return doc, json.loads(result.stdout)


# ------------------------------------------------------------------ the subject's whole path


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_whole_path_and_its_errors_stay_in_the_chosen_language(stack, own_controller, lang):
    site = own_controller.site
    browser = Browser(stack, lang)
    form = in_language(browser.get(f"/?lang={lang}&site={site}"), lang)
    assert WORDS["form"][lang] in form
    action = form_action(form)

    refused = browser.post(action, {"site": site, "type": "access", "email": "", "locale": lang})  # no address
    assert refused.status_code == 422
    in_language(refused, lang)

    unknown = browser.post(
        action, {"site": "no-such-site.example", "type": "access", "email": "x@example.org", "locale": lang}
    )
    assert unknown.status_code == 422
    in_language(unknown, lang)

    email = f"lang-{uuid.uuid4().hex[:10]}@example.org"
    verify = browser.follow(browser.post(action, {"site": site, "type": "access", "email": email, "locale": lang}))
    verify_html = in_language(verify, lang)
    assert WORDS["verify"][lang] in verify_html

    wrong = browser.post(form_action(verify_html), {"code": "000000", "locale": lang})
    assert wrong.status_code >= 400
    in_language(wrong, lang)

    code = re.search(r"\b(\d{6})\b", stack.wait_for_mail(email)["text"]).group(1)
    verified = browser.post(form_action(verify_html), {"code": code, "locale": lang})
    assert verified.status_code == 200
    verified_html = in_language(verified, lang)

    status_link = re.search(r'href="([^"]+)" data-status-link', verified_html).group(1).replace("&amp;", "&")
    status = browser.get(status_link)
    status_html = in_language(status, lang)

    token = re.search(r'name="token" value="([^"]+)"', status_html).group(1)
    cancelled = browser.follow(browser.post(form_action(status_html), {"token": token, "locale": lang}))
    in_language(cancelled, lang)

    # The status link from a later mail carries no token: the lookup page, then a bad token's error.
    request_id = urlsplit(status_link).path.rsplit("/", 1)[1]
    lookup = in_language(browser.get(f"/status/{request_id}?lang={lang}"), lang)
    assert 'name="lang"' in lookup
    denied = browser.get(f"/status/{request_id}?token=rst_wrong&lang={lang}")
    assert denied.status_code in (401, 404)
    in_language(denied, lang)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize(
    "path, status",
    [
        ("/status/dsr_0000?token=rst_nothing", 404),
        ("/verify/dsr_0000", 200),
        ("/v1/unsubscribe?token=bad", 400),
        ("/v1/policies/no-such-policy", 404),
    ],
)
def test_error_and_edge_pages_are_in_the_chosen_language(stack, lang, path, status):
    separator = "&" if "?" in path else "?"
    response = Browser(stack, lang).get(f"{path}{separator}lang={lang}")
    assert response.status_code == status or (status == 400 and 400 <= response.status_code < 500), response.text[:300]
    in_language(response, lang)


def test_a_status_link_without_lang_uses_the_requests_own_language(stack, own_controller):
    browser = Browser(stack, "sl")
    email = f"lang-{uuid.uuid4().hex[:10]}@example.org"
    submitted = stack.post(
        "/v1/requests",
        json={"site": own_controller.site, "type": "access", "email": email, "locale": "sl"},
        headers={"Accept": "application/json"},
    )
    request_id = submitted.json()["request_id"]
    code = re.search(r"\b(\d{6})\b", stack.wait_for_mail(email)["text"]).group(1)
    token = stack.post(
        f"/v1/requests/{request_id}/verify", json={"code": code}, headers={"Accept": "application/json"}
    ).json()["status_token"]
    page = browser.get(f"/status/{request_id}?token={token}")  # the browser prefers German
    in_language(page, "sl")


# ------------------------------------------------------------------ the policy archive


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_policy_archive_is_a_page_for_browsers(stack, published_policy, lang):
    doc, published = published_policy
    archive = in_language(Browser(stack, lang).get(f"/v1/policies/{doc}?lang={lang}"), lang)
    digest = hashlib.sha256(POLICY_TEXT).hexdigest()
    assert digest in archive and published["text_sha256"] == digest
    version = in_language(Browser(stack, lang).get(f"/v1/policies/{doc}/versions/2026-12?lang={lang}"), lang)
    assert digest in version and "https://example.com/privacy" in version
    assert ("Kürzere Aufbewahrung." if lang == "de" else "Shorter retention.") in version


def test_the_policy_archive_is_json_for_api_clients(stack, published_policy):
    doc, _ = published_policy
    answer = requests.get(f"{stack.base_url}/v1/policies/{doc}", headers={"Accept": "application/json"}, timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    [version] = answer.json()["versions"]
    assert version["text_sha256"] == hashlib.sha256(POLICY_TEXT).hexdigest()


# ------------------------------------------------------------------ rightsdesk --local and the ports


def test_the_cli_finds_the_stack_by_the_runners_port_variables(stack, own_controller):
    result = rightsdesk(stack, "--json", "controllers", "list", **ports_of(stack))
    assert result.returncode == 0, result.stdout + result.stderr
    assert own_controller.controller_id in result.stdout, "the listing is this stack's (it holds the test's controller)"


def test_the_cli_refuses_a_moto_that_is_not_the_stacks(stack):
    variables = {**ports_of(stack), "RIGHTSDESK_LOCAL_MOTO_PORT": "9"}
    result = rightsdesk(stack, "--json", "controllers", "list", **variables)
    assert result.returncode == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "local_mismatch" and "RIGHTSDESK_LOCAL_MOTO_PORT" in error["message"]
