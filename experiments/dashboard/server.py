"""`attnas dashboard RUN`: optuna-dashboard on a run's history and artifact store, served by a small threaded WSGI
server that binds 127.0.0.1 unless another host is asked for. It reads the storage through the same engine settings
as the driver (SQLite with a busy timeout), so it stays live while a search writes to it.

optuna-dashboard has no authentication and serves write endpoints (delete the study, rename it, edit notes, tell
trials, upload or delete artifacts) to anyone who reaches the port. Every one of them is a POST, PUT or DELETE; its
reads are GET. So the run is served read-only unless the user asks for writes: `read_only` answers every other
method with 405 before optuna-dashboard sees the request."""
from __future__ import annotations

import ipaddress
import json
import os
import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from attnas.experiments.dashboard.page_style import with_page_style
from attnas.experiments.dashboard.store import artifact_store, run_artifact_dir
from attnas.experiments.dashboard.trial_window import DEFAULT_LIMIT, TrialWindow
from attnas.experiments.history import History
from attnas.experiments.run_folder import RunFolder, open_run
from attnas.search_space.errors import AttnasError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
READ_METHODS = ("GET", "HEAD")


def read_only(app):
    """The WSGI app `app` with every request other than GET and HEAD refused (405), so nothing can change the
    history through it."""

    def refuse_writes(environ, start_response):
        if environ.get("REQUEST_METHOD", "GET").upper() in READ_METHODS:
            return app(environ, start_response)
        body = json.dumps({"reason": "this attnas dashboard is read-only; restart it with `attnas dashboard RUN "
                                     "--allow-writes` to change the history from the browser"}).encode()
        start_response("405 Method Not Allowed", [("Content-Type", "application/json"),
                                                  ("Content-Length", str(len(body))),
                                                  ("Allow", ", ".join(READ_METHODS))])
        return [body]

    return refuse_writes


def exposure_warning(host: str, *, allow_writes: bool) -> str | None:
    """What serving on `host` exposes when `host` is not a loopback address (None when it is)."""
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:  # a host name, or '' (every interface)
        pass
    shown = repr(host) if host else "every network interface ('')"
    exposed = ("read, change and delete the whole search history (--allow-writes)" if allow_writes
               else "read the whole search history, its cells, notes and figures")
    return (f"warning: the dashboard listens on {shown}, not this machine only; it has no authentication, so anyone "
            f"who can reach the port can {exposed}")


def open_history(run_dir: str | os.PathLike) -> tuple[RunFolder, History]:
    """The run folder and its history, or a one-line `AttnasError` when either is missing or unreadable."""
    run = open_run(run_dir)
    return run, run.history(create=False)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _IPv6ThreadingServer(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # one line per request would drown the terminal
        pass


class DashboardServer:
    """optuna-dashboard for one run, on `host:port` (port 0 picks a free one), read-only unless `allow_writes`;
    `serve_forever` blocks, `start` serves from a background thread (for tests and benchmarks), `close` stops it."""

    def __init__(self, run_dir: str | os.PathLike, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 allow_writes: bool = False, trials: int | None = DEFAULT_LIMIT):
        import optuna_dashboard

        from attnas.experiments.dashboard import speedup

        speedup.install()
        self.run, self.history = open_history(run_dir)
        self.storage = TrialWindow(self.history.storage, trials)
        app = with_page_style(optuna_dashboard.wsgi(self.storage,
                                                    artifact_store=artifact_store(run_artifact_dir(self.run))))
        if not allow_writes:
            app = read_only(app)
        self.warning = exposure_warning(host, allow_writes=allow_writes)
        server_class = _IPv6ThreadingServer if ":" in host else _ThreadingServer
        try:
            self.httpd = make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
        except OSError as error:
            raise AttnasError(f"cannot serve the dashboard on {host}:{port}: {error.strerror or error}") from None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on."""
        host, port = self.httpd.server_address[:2]
        return host, port

    @property
    def shown(self) -> str | None:
        """What the trial list leaves out of a long history (None when it shows every trial)."""
        window = self.storage.window(self.history.study_id)
        if window.shown == window.total:
            return None
        return (f"the trial list shows {window.shown:,} of the run's {window.total:,} trials: the "
                f"{len(window.best)} best and the latest {window.total - window.first_latest:,}, then every new one "
                f"(--trials all shows every trial)")

    @property
    def url(self) -> str:
        """The dashboard page of the run's study."""
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/dashboard/studies/{self.history.study_id}"

    def serve_forever(self) -> None:
        """Serve until `close` (from another thread) or Ctrl-C."""
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> "DashboardServer":
        """Serve from a background thread; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="attnas-dashboard", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> "DashboardServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
