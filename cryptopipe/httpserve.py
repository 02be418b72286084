"""A stdlib HTTP server on a background thread: the lifecycle the dashboard and the replay share.

Both serve beside other work in one process (``cryptopipe up`` runs the replay, the
producer, the stream and the dashboard together; tests run them beside the code
under test), so each binds on loopback, serves from a thread, and stops without
leaving a thread or a socket behind. :class:`BackgroundServer` is that, once::

    class Hello(BackgroundServer):
        thread_name = "hello"

        def _bind(self, address):
            return ThreadingHTTPServer(address, HelloHandler)

    with Hello(port=0) as server:
        print(server.address)   # ('127.0.0.1', 41234)

Handler threads are the server's to join: make it ``daemon_threads = False`` so
:meth:`BackgroundServer.stop` waits for requests in flight.
"""

from __future__ import annotations

import functools
import threading
from abc import ABC, abstractmethod
from http.server import ThreadingHTTPServer
from typing import ClassVar, Self

#: Where the local app listens unless told otherwise: this machine only.
LOOPBACK = "127.0.0.1"


class BackgroundServer(ABC):
    """Binds on :meth:`start`, serves on a thread until :meth:`stop`; a context manager too."""

    #: The serving thread's name, as thread dumps show it.
    thread_name: ClassVar[str]
    #: Seconds between the serving loop's looks at whether to stop: short keeps stop() quick.
    poll_interval: ClassVar[float] = 0.1

    def __init__(self, *, host: str = LOOPBACK, port: int = 0) -> None:
        self._address = (host, port)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _bind(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        """A server listening on ``address``; raises what binding raises (OSError, or the caller's own)."""

    def _serving(self) -> None:
        """Called once bound, before the first request is served: set up what requests read."""

    def _unblock(self, httpd: ThreadingHTTPServer) -> None:
        """Called once no new request is taken, before handler threads are joined: cut what could hang them."""

    def start(self) -> Self:
        """Bind and serve on a background thread; raises RuntimeError if already started."""
        if self._httpd is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._httpd = self._bind(self._address)
        self._serving()
        serve = functools.partial(self._httpd.serve_forever, poll_interval=self.poll_interval)
        self._thread = threading.Thread(target=serve, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop taking requests, wait for those in flight, close the socket; a no-op when not started."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._unblock(self._httpd)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = None

    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._httpd is not None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port): the bound port once started, the one asked for (0: any free one) before."""
        return self._httpd.server_address[:2] if self._httpd is not None else self._address

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
