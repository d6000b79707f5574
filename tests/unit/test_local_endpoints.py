"""`rightsdesk --local` follows the port settings `make run` follows, and never talks to another stack."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from local import __main__ as runner
from rightsdesk.platform import local_endpoints
from rightsdesk_cli.main import app

AWS_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "RIGHTSDESK_TABLE",
)
SETTING_VARIABLES = tuple(s.variable for s in local_endpoints.PORTS) + (
    local_endpoints.GATEWAY_URL_VARIABLE,
    local_endpoints.MOTO_URL_VARIABLE,
)


@pytest.fixture
def clean_env(monkeypatch):
    # Recorded first, so what --local writes into the environment is undone after the test.
    for name in AWS_VARIABLES:
        monkeypatch.setenv(name, os.environ.get(name, ""))
    for name in SETTING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


class FakeGateway:
    """A /_dev/health that says which moto its stack uses."""

    def __init__(self, moto_port: int):
        health = {
            "ok": True,
            "moto": f"http://127.0.0.1:{moto_port}",
            "region": "eu-central-1",
            "clock": {"offset_seconds": 0},
            "resources": {"RightsTable": {"name": "fake-RightsTable"}},
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                body = json.dumps(health).encode() if self.path == "/_dev/health" else b"{}"
                self.send_response(200 if self.path == "/_dev/health" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    fake = FakeGateway(moto_port=45991)
    yield fake
    fake.close()


@pytest.mark.parametrize("setting", local_endpoints.PORTS, ids=lambda s: s.variable)
def test_the_runner_and_the_cli_read_one_variable_per_port_with_one_default(setting, clean_env):
    assert runner._port(setting, None) == setting.default == local_endpoints.port(setting)
    clean_env.setenv(setting.variable, "4711")
    assert runner._port(setting, None) == 4711 == local_endpoints.port(setting)
    assert runner._port(setting, 4712) == 4712  # the runner's flag wins over the variable
    parsed = vars(runner.parse_args([setting.flag, "5000"]))  # the runner's flag is the module's
    assert parsed[setting.flag.lstrip("-").replace("-", "_")] == 5000


def test_the_cli_builds_its_urls_from_the_runners_variables(clean_env):
    clean_env.setenv("RIGHTSDESK_LOCAL_PORT", "3100")
    clean_env.setenv("RIGHTSDESK_LOCAL_MOTO_PORT", "4600")
    assert local_endpoints.gateway_url() == "http://127.0.0.1:3100"
    assert local_endpoints.moto_url() == "http://127.0.0.1:4600"


def test_a_bad_port_value_names_its_variable(clean_env):
    clean_env.setenv("RIGHTSDESK_LOCAL_MOTO_PORT", "forty")
    result = CliRunner().invoke(app, ["--local", "--json", "requests", "list"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "local_settings" and "RIGHTSDESK_LOCAL_MOTO_PORT" in error["message"]


def test_nothing_running_on_the_configured_port_names_the_variable(clean_env):
    clean_env.setenv("RIGHTSDESK_LOCAL_PORT", "9")  # discard port: nothing answers
    result = CliRunner().invoke(app, ["--local", "--json", "requests", "list"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "local_unreachable"
    assert "127.0.0.1:9" in error["message"] and "RIGHTSDESK_LOCAL_PORT" in error["message"]


def test_a_stack_on_another_moto_is_refused_before_anything_is_read(clean_env, gateway):
    clean_env.setenv("RIGHTSDESK_LOCAL_PORT", str(gateway.port))
    clean_env.setenv("RIGHTSDESK_LOCAL_MOTO_PORT", "45992")  # the stack uses 45991
    result = CliRunner().invoke(app, ["--local", "--json", "requests", "list"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "local_mismatch"
    assert "45991" in error["message"] and "45992" in error["message"]
    assert "RIGHTSDESK_LOCAL_MOTO_PORT" in error["message"]
    assert os.environ.get("AWS_ENDPOINT_URL") != "http://127.0.0.1:45992"


def test_the_default_moto_is_refused_when_the_stack_runs_elsewhere(clean_env, gateway):
    clean_env.setenv("RIGHTSDESK_LOCAL_PORT", str(gateway.port))  # moto left at the default 4566
    result = CliRunner().invoke(app, ["--local", "--json", "requests", "list"])
    assert json.loads(result.stdout)["error"]["code"] == "local_mismatch"


def test_matching_settings_connect_to_that_stacks_moto_and_table(clean_env, gateway):
    from rightsdesk_cli.context import Context

    clean_env.setenv("RIGHTSDESK_LOCAL_PORT", str(gateway.port))
    clean_env.setenv("RIGHTSDESK_LOCAL_MOTO_PORT", "45991")
    state = Context(local=True)
    state._bind = lambda table: setattr(state, "table_name", table)  # no models rebinding in a unit test
    state.connect()
    assert state.table_name == "fake-RightsTable"
    assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:45991"
