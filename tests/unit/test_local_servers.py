"""local/servers.py: the HTTP plumbing the gateway, moto's process and the receiver share."""

from __future__ import annotations

import http.client

import pytest

from local.servers import HttpServer, RequestHandler, ServerThread

SIZES = [0, 1, 1000, RequestHandler.wbufsize - 200, RequestHandler.wbufsize, 3 * RequestHandler.wbufsize + 7]


def _app(request: RequestHandler) -> None:
    request.read_body()  # as every app of the runner does, before it answers
    size = int(request.path.rsplit("/", 1)[1])
    request.respond(200, [("Content-Type", "application/octet-stream")], bytes(i % 251 for i in range(size)))


@pytest.fixture
def server():
    running = HttpServer("127.0.0.1", 0, _app)
    thread = ServerThread(running, "test-server")
    thread.start()
    yield running
    thread.stop()


def test_answers_of_every_size_arrive_whole_on_one_kept_alive_connection(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for size in [*SIZES, *reversed(SIZES)]:
            connection.request("GET", f"/bytes/{size}")
            answer = connection.getresponse()
            body = answer.read()
            assert answer.status == 200
            assert int(answer.headers["Content-Length"]) == size
            assert body == bytes(i % 251 for i in range(size))
        connection.request("HEAD", f"/bytes/{SIZES[-1]}")
        head = connection.getresponse()
        assert head.read() == b"" and int(head.headers["Content-Length"]) == SIZES[-1]
        connection.request("GET", "/bytes/5")  # the connection is still usable after a HEAD
        assert connection.getresponse().read() == bytes(range(5))
    finally:
        connection.close()


def test_a_client_that_expects_100_continue_gets_it_before_it_sends_the_body(server):
    # botocore sends S3 uploads this way: it holds the body back until the interim answer arrives
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as client:
        client.sendall(b"PUT /bytes/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        client.settimeout(2)
        interim = client.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100"), "the 100 Continue came before the body was sent"
        client.sendall(b"body")
        answer = client.recv(1024)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(bytes(range(3)))
