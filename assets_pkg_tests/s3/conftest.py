"""A real S3 API on loopback (moto's server), and a fault-injecting proxy in front of it.

The lake talks HTTP to the proxy exactly as it would to S3; the proxy forwards every request
to moto unchanged, except the ones a test told it to break: answer with a 5xx (or any S3
error) or stall past the client's timeout. Every request it sees is logged, so a test can
show that a failed request was tried again.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
#: how long a stalled request waits before it is forwarded: past ASSETS_PKG_LAKE_TIMEOUT_S
STALL_S = 6.0
LAKE_TIMEOUT_S = 2

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class Fault:
    """Break matching requests: ``times`` of them (None: every one), from the ``skip``+1-th."""

    method: str
    path_contains: str
    status: int = 503
    code: str = "SlowDown"
    stall: bool = False
    times: int | None = 1
    skip: int = 0
    seen: int = 0
    injected: int = 0

    def matches(self, method: str, path: str) -> bool:
        if method != self.method or self.path_contains not in path:
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        return self.times is None or self.injected < self.times


@dataclasses.dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int
    injected: bool


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of one S3 endpoint."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faults: list[Fault] = []
        self.log: list[Request] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            # HTTP/1.1 so that "Expect: 100-continue" is answered at once (boto3 sends it
            # with every PUT and otherwise waits a second before the body)
            protocol_version = "HTTP/1.1"

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        chunk = self.rfile.read(size + 2)[:size]
                        if size == 0:
                            return data
                        data += chunk
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                body = self._body()
                fault = proxy._fault_for(self.command, unquote(self.path))
                if fault is not None and fault.stall:
                    time.sleep(STALL_S)  # the client has given up by now
                elif fault is not None:
                    proxy._record(self.command, self.path, fault.status, True)
                    payload = (
                        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{fault.code}'
                        f"</Code><Message>injected</Message><Resource>{self.path}</Resource>"
                        "</Error>"
                    ).encode()
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                if body or self.command in ("PUT", "POST"):
                    headers["Content-Length"] = str(len(body))
                upstream.request(self.command, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                proxy._record(self.command, self.path, response.status, fault is not None)
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() in HOP_BY_HOP or key.lower() in ("date", "server"):
                        continue
                    if key.lower() == "content-length" and self.command != "HEAD":
                        continue
                    self.send_header(key, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that timed out on a stalled request hung up: expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.injected += 1
                    return fault
        return None

    def _record(self, method: str, path: str, status: int, injected: bool) -> None:
        with self._lock:
            self.log.append(Request(method, unquote(path.split("?")[0]), status, injected))

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        """Stop injecting (the log stays, for the test to read)."""
        with self._lock:
            self.faults.clear()

    def reset(self) -> None:
        """No faults and an empty log: a test sees only its own requests."""
        with self._lock:
            self.faults.clear()
            self.log.clear()

    def requests(self, method: str, path_contains: str = "") -> list[Request]:
        with self._lock:
            return [r for r in self.log if r.method == method and path_contains in r.path]


@pytest.fixture(scope="package")
def moto_port() -> Iterator[int]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield port
    server.stop()


@pytest.fixture(scope="package")
def fault_proxy(moto_port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(moto_port)
    proxy.thread.start()
    yield proxy
    proxy.server.shutdown()
    proxy.server.server_close()


def use_s3(mp: pytest.MonkeyPatch, endpoint: str, tmp: Path) -> None:
    """AWS_* for a loopback server; no profile or config file of the machine leaks in."""
    mp.setenv("AWS_ENDPOINT_URL", endpoint)
    mp.setenv("AWS_ACCESS_KEY_ID", "test-key-id")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
    mp.setenv("AWS_REGION", REGION)
    mp.setenv("AWS_CONFIG_FILE", str(tmp / "no-aws-config"))
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-aws-credentials"))
    mp.setenv("ASSETS_PKG_LAKE_TIMEOUT_S", str(LAKE_TIMEOUT_S))
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_MAX_ATTEMPTS", "AWS_DEFAULT_REGION"):
        mp.delenv(var, raising=False)


def new_bucket(moto_port: int) -> str:
    """A fresh bucket, created straight on moto (not through the proxy)."""
    name = f"lake-{uuid.uuid4().hex[:12]}"
    raw_client(moto_port).create_bucket(Bucket=name)
    return name


def raw_client(moto_port: int) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{moto_port}",
        region_name=REGION,
        aws_access_key_id="test-key-id",
        aws_secret_access_key="test-secret-key",
    )


def bucket_keys(moto_port: int, bucket: str) -> list[str]:
    client = raw_client(moto_port)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(keys)


@pytest.fixture
def s3_lake(
    moto_port: int, fault_proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An empty s3:// lake URL (through the proxy) for one test; the proxy's faults cleared."""
    use_s3(monkeypatch, fault_proxy.url, tmp_path)
    bucket = new_bucket(moto_port)
    fault_proxy.reset()
    yield f"s3://{bucket}/platform"
    fault_proxy.clear()
