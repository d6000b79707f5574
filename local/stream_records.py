"""GetRecords for the stream pollers, answered as the JSON it comes in.

Lambda hands a function the stream's records as the DynamoDB Streams API writes them: typed
attributes, binaries in base64, times in epoch seconds. boto3 parsed every record into Python
types (bytes, datetimes) that the poller then turned back into those JSON types, once for each of
the stream's mappings: in the peer load, about 6 ms of the runner's CPU per verified request for
each mapping, on the one GIL the API gateway also needs (docs/decisions.md, "Stream records as the
JSON they come in"). Here the answer's JSON is read as it is, over one kept-alive connection per poller.

moto checks no signature: the Authorization header only names the service and region it routes by.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.parse
from typing import Any

TARGET = "DynamoDBStreams_20120810.GetRecords"


class StreamReadError(Exception):
    """An error answer of GetRecords: its status and AWS error type, never the request."""

    def __init__(self, status: int, error_type: str):
        super().__init__(f"GetRecords answered {status} {error_type}")
        self.status = status
        self.error_type = error_type


class StreamRecords:
    """One poller's reader (not shared between threads: one connection)."""

    def __init__(self, endpoint_url: str, region: str, timeout: float = 30.0):
        parts = urllib.parse.urlsplit(endpoint_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.region = region
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def get_records(self, iterator: str, limit: int) -> dict[str, Any]:
        """The answer: Records (each as Lambda delivers it, before the poller adds its source
        fields) and NextShardIterator."""
        body = json.dumps({"ShardIterator": iterator, "Limit": limit})
        try:
            return self._post(body)
        except (http.client.HTTPException, OSError):
            self.close()  # moto closed a kept-alive connection: once more on a new one (a read)
            return self._post(body)

    def _post(self, body: str) -> dict[str, Any]:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._connection.request("POST", "/", body=body, headers=self._headers())
        answer = self._connection.getresponse()
        payload = answer.read()
        if answer.status != 200:
            raise StreamReadError(answer.status, _error_type(payload))
        return json.loads(payload)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _headers(self) -> dict[str, str]:
        day = time.strftime("%Y%m%d", time.gmtime())
        access_key = os.environ.get("AWS_ACCESS_KEY_ID", "testing")
        return {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": TARGET,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={access_key}/{day}/{self.region}/dynamodb/aws4_request, "
                "SignedHeaders=content-type;host;x-amz-target, Signature=unsigned"
            ),
        }


def _error_type(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("__type", "unknown")).rpartition("#")[2]
    except (ValueError, AttributeError):
        return "unknown"
