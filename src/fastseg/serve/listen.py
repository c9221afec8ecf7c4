"""Listening: the address rule, the socket, and uvicorn running the app until a signal.

The socket is bound here, before uvicorn starts, so a port in use is a one-line error (exit 2)
rather than uvicorn's log line and exit 1; uvicorn then serves on it with httptools and uvloop
where they are installed (about a third faster than h11 and asyncio's loop).
"""

import importlib.util
import ipaddress
import os
import signal
import socket

from ..errors import FastsegError


def is_loopback(host):
    """Whether only this machine can reach ``host`` ('localhost', 127.0.0.1, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to an interface the network reaches
        return False


def url(host, port):
    """The server's address (an IPv6 address in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def bind(host, port):
    """A socket bound to ``host``:``port`` (a FastsegError says why it cannot be)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise FastsegError(f"cannot listen on '{host}': {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        taken = exc.errno == getattr(os, "EADDRINUSE", 98)
        why = "it is in use: choose another with --port" if taken else exc.strerror
        raise FastsegError(f"cannot listen on {url(host, port)}: {why}") from None
    return sock


class _Stopped(BaseException):
    """SIGINT or SIGTERM, raised once uvicorn has shut down gracefully."""


def _stop(signum, frame):
    raise _Stopped


def run(app, sock):
    """Serve ``app`` on ``sock`` until Ctrl-C or SIGTERM (uvicorn finishes the requests in
    flight, then hands the signal back here: a normal end)."""
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        http="httptools" if importlib.util.find_spec("httptools") else "auto",
        loop="uvloop" if importlib.util.find_spec("uvloop") else "auto",
        lifespan="on",
        server_header=False,
    )
    server = uvicorn.Server(config)
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, _stop) for s in handled}
    try:
        server.run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()
