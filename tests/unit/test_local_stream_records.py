"""The stream pollers' GetRecords (local/stream_records.py): the answer's JSON as Lambda hands it
on, an error answer by its type, and a kept-alive connection the server closed is replaced."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from local.stream_records import StreamReadError, StreamRecords

RECORD = {
    "eventID": "1",
    "eventName": "MODIFY",
    "eventSource": "aws:dynamodb",
    "dynamodb": {
        "ApproximateCreationDateTime": 1796445083.084,
        "Keys": {"pk": {"S": "REQ#dsr_1"}, "sk": {"S": "REQUEST"}},
        "NewImage": {"blob": {"B": "YWJj"}, "n": {"N": "3"}},
        "SequenceNumber": "100",
    },
}


class Moto(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answers: list[tuple[int, dict, bool]] = []  # status, body, close the connection after it
    seen: list[tuple[dict, dict]] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Moto.seen.append((dict(self.headers), body))
        status, answer, close = Moto.answers.pop(0)
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = close

    def log_message(self, *args):
        pass


@pytest.fixture
def moto():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Moto)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Moto.answers, Moto.seen = [], []
    yield StreamRecords(f"http://127.0.0.1:{server.server_address[1]}", "eu-central-1")
    server.shutdown()


def test_records_come_as_the_api_wrote_them_typed_base64_and_epoch_seconds(moto):
    Moto.answers = [(200, {"Records": [RECORD], "NextShardIterator": "next"}, False)]
    answer = moto.get_records("iterator-1", 100)
    assert answer == {"Records": [RECORD], "NextShardIterator": "next"}
    headers, body = Moto.seen[0]
    assert body == {"ShardIterator": "iterator-1", "Limit": 100}
    assert headers["X-Amz-Target"] == "DynamoDBStreams_20120810.GetRecords"
    assert "/eu-central-1/dynamodb/aws4_request" in headers["Authorization"], "moto routes by the scope"


def test_an_error_answer_is_raised_by_its_type_only(moto):
    Moto.answers = [(400, {"__type": "com.amazonaws.dynamodb#ExpiredIteratorException", "message": "x"}, False)]
    with pytest.raises(StreamReadError) as error:
        moto.get_records("old", 100)
    assert (error.value.status, error.value.error_type) == (400, "ExpiredIteratorException")


def test_a_connection_the_server_closed_is_replaced_once(moto):
    Moto.answers = [(200, {"Records": []}, True), (200, {"Records": [RECORD]}, False)]
    assert moto.get_records("a", 10) == {"Records": []}
    assert moto.get_records("b", 10) == {"Records": [RECORD]}, "a new connection after the server closed it"
