"""One botocore data loader for every DynamoDB connection pynamodb opens.

pynamodb opens a connection per model class (and per thread), each on a new botocore session that
parses endpoints.json and the DynamoDB service model again: 70-150 ms each on this project's
machines (docs/benchmarks.md), so a cold function paid that once for every kind of item it touched.
Sessions stay one per connection (their credentials, event handlers and test stubs are unchanged);
only the parsed, read-only data is shared.
"""

from __future__ import annotations

import threading

import botocore.loaders
import botocore.session
import pynamodb.connection.base as pynamodb_connection

_loader: botocore.loaders.Loader | None = None
_lock = threading.Lock()


def _session() -> botocore.session.Session:
    global _loader
    session = botocore.session.get_session()
    with _lock:
        if _loader is None:
            _loader = session.get_component("data_loader")
        else:
            session.register_component("data_loader", _loader)
    return session


def share_botocore_data() -> None:
    pynamodb_connection.get_session = _session
