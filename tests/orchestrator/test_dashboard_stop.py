"""`auxsearch dashboard` stops on SIGTERM or Ctrl+C, even while it answers a request:
the signal sets an event the main thread waits on, the serving thread is shut
down, the port is freed and the previous signal handlers are back."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIServer, make_server

import pytest

from orchestrator.dashboard import _Handler, _serve_until_stopped

Start = Callable[[dict, Callable], Iterable[bytes]]


def _slow_app(started: threading.Event) -> Start:
    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        started.set()
        time.sleep(1.0)  # the stop arrives while this request is being answered
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_request_stops_the_server_and_frees_the_port(signum: int) -> None:
    started = threading.Event()
    server: WSGIServer = make_server("127.0.0.1", 0, _slow_app(started), handler_class=_Handler)
    port = server.server_port
    answers: list[bytes] = []

    def client() -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            answers.append(r.read())

    def stop_when_busy() -> None:
        started.wait(10)
        os.kill(os.getpid(), signum)

    before = signal.getsignal(signum)
    threads = [threading.Thread(target=client), threading.Thread(target=stop_when_busy)]
    for t in threads:
        t.start()
    # if the signal were ignored, end the loop another way so the test fails, not hangs
    watchdog = threading.Timer(15, server.shutdown)
    watchdog.start()
    began = time.monotonic()
    _serve_until_stopped(server)  # returns only once stopped
    took = time.monotonic() - began
    watchdog.cancel()
    for t in threads:
        t.join(10)
    assert answers == [b"ok"]  # the request in flight was answered, then the loop ended
    assert took < 5
    assert signal.getsignal(signum) is before
    assert server.socket.fileno() == -1  # closed
    with socket.socket() as probe:  # nothing listens there any more (TIME_WAIT may stay)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
