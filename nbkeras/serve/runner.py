"""Running the app: who may listen where, and uvicorn on a thread.

`check_exposure` refuses to listen beyond the loopback without a token
(or an explicit `--no-token`, which warns). `bind` opens the socket first
so that a taken port is a one-line `UsageError`, and port 0 picks a free
one. `ServerThread` runs uvicorn on a thread of this process (the kernel,
for `%serve`); `stop()` closes the socket, so the port is free again.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Optional

from ..errors import UsageError

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: Optional[str], no_token: bool, warn=print) -> None:
    """Refuse a non-loopback host without a token; warn when `no_token` allows it.

    Raises:
        UsageError: `host` is not a loopback address and neither a token nor
            `no_token` was given, or both were.
    """
    if token is not None and no_token:
        raise UsageError("--token and --no-token were both given; choose one")
    if token is not None and not token.strip():
        raise UsageError("--token is empty; give a secret string, e.g. "
                         "`--token $(python -c 'import secrets; print(secrets.token_urlsafe())')`")
    if is_loopback(host) or token:
        return
    if not no_token:
        raise UsageError(f"listening on {host} lets anyone who reaches this machine call the "
                         "model; give --token T (clients send `Authorization: Bearer T`), or "
                         "--no-token to serve it openly")
    warn(f"warning: serving on {host} without a token: anyone who reaches this machine "
         "can call the model")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), or a one-line `UsageError`."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}: give a port from 1 to 65535 (0 picks a free one)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        socket.getaddrinfo(host, port, family)
    except socket.gaierror:
        sock.close()
        raise UsageError(f"--host {host}: not an address of this machine; give an IP such "
                         "as 127.0.0.1 or 0.0.0.0") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
            raise UsageError(f"port {port} on {host} is in use; choose another with "
                             "--port N (0 picks a free one)") from None
        raise UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    if family in (socket.AF_INET, socket.AF_INET6):
        # accepted connections inherit it (Linux): a response's header and body are
        # two writes, and Nagle's algorithm held the second for the client's
        # delayed ACK, 40 ms on every keep-alive request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


class ServerThread:
    """uvicorn serving `app` on a daemon thread.

    Args:
        app: an ASGI app.
        host: the address to listen on.
        port: the port (0: a free one; read `.port`).

    Raises:
        UsageError: the port is taken or the server did not start.
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 8501, timeout: float = 30):
        import uvicorn
        self.app = app
        self.host = host
        self.sock = bind(host, port)
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False,
                                lifespan="on", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name=f"nbkeras-serve-{self.port}",
                                       daemon=True)
        self.error: Optional[BaseException] = None
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive():
            if time.monotonic() > deadline:
                self.stop()
                raise UsageError(f"the server on port {self.port} did not start within "
                                 f"{timeout:.0f} s")
            time.sleep(0.01)
        if not self.server.started:
            self.sock.close()
            raise UsageError(f"the server on port {self.port} failed to start: {self.error}")

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as e:  # SystemExit from uvicorn included
            self.error = e

    @property
    def url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def running(self) -> bool:
        return self.thread.is_alive() and not self.server.should_exit

    def stop(self, timeout: float = 10) -> None:
        """Stop serving and free the port."""
        self.server.should_exit = True
        self.thread.join(timeout)
        try:
            self.sock.close()
        except OSError:
            pass
