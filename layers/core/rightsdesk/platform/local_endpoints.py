"""Where the local run listens: one set of defaults and variable names for `make run` (local/)
and `rightsdesk --local` (the CLI), so both follow the same settings and neither keeps a copy.

A port comes from the runner's flag, else its variable, else the default. The CLI has no port
flags of its own: it reads the same variables, and two full-URL overrides (RIGHTSDESK_LOCAL_URL,
RIGHTSDESK_LOCAL_MOTO_URL) win over the ports for a stack elsewhere (tests start stacks on free ports).
Nothing here imports more than the standard library and rightsdesk.platform.config (the one reader
of the environment): the layer ships it, no handler reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

HOST = "127.0.0.1"
GATEWAY_URL_VARIABLE = "RIGHTSDESK_LOCAL_URL"
MOTO_URL_VARIABLE = "RIGHTSDESK_LOCAL_MOTO_URL"


@dataclass(frozen=True)
class PortSetting:
    what: str
    variable: str
    flag: str
    default: int


GATEWAY = PortSetting("gateway", "RIGHTSDESK_LOCAL_PORT", "--port", 3000)
MOTO = PortSetting("moto", "RIGHTSDESK_LOCAL_MOTO_PORT", "--moto-port", 4566)
RECEIVER = PortSetting("webhook receiver", "RIGHTSDESK_LOCAL_RECEIVER_PORT", "--receiver-port", 3001)
PORTS = (GATEWAY, MOTO, RECEIVER)


class BadPortSetting(ValueError):
    pass


def port(setting: PortSetting, flag_value: int | None = None, environ: Mapping[str, str] | None = None) -> int:
    if flag_value is not None:
        return flag_value
    value = _variables(environ).get(setting.variable, "").strip()
    if not value:
        return setting.default
    try:
        number = int(value)
    except ValueError:
        raise BadPortSetting(f"{setting.variable} must be a port number, not {value!r}") from None
    if not 0 < number < 65536:
        raise BadPortSetting(f"{setting.variable} must be a port number (1-65535), not {number}")
    return number


def _variables(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    if environ is not None:
        return environ
    from rightsdesk.platform.config import variables  # only when no mapping is given

    return variables()


def gateway_url(environ: Mapping[str, str] | None = None) -> str:
    environ = _variables(environ)
    return (environ.get(GATEWAY_URL_VARIABLE) or f"http://{HOST}:{port(GATEWAY, environ=environ)}").rstrip("/")


def moto_url(environ: Mapping[str, str] | None = None) -> str:
    environ = _variables(environ)
    return (environ.get(MOTO_URL_VARIABLE) or f"http://{HOST}:{port(MOTO, environ=environ)}").rstrip("/")


def same_endpoint(one: str, other: str) -> bool:
    """Two URLs of one local server: `localhost` and 127.0.0.1 are the same host."""

    def key(url: str) -> tuple[str, int | None]:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        return ("127.0.0.1" if host in ("localhost", "::1") else host), parts.port

    return key(one) == key(other)


def settings_hint(setting: PortSetting, url: str | None = None) -> str:
    """How to point the CLI at the stack's port, for error messages: the variable `make run` reads too."""
    port_value = str(urlsplit(url).port) if url and urlsplit(url).port else "<port>"
    url_variable = GATEWAY_URL_VARIABLE if setting is GATEWAY else MOTO_URL_VARIABLE if setting is MOTO else None
    also = f" (or {url_variable}={url or '<url>'})" if url_variable else ""
    return f"export {setting.variable}={port_value}, the variable `make run` reads too, and start both with it{also}"
