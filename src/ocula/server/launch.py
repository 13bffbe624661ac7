"""``ocula.launch_app``: the web app over an embedded catalog, started from Python.

The app runs in a background thread of the calling process (a notebook's kernel, a
script) on the client's own ``Service``, so it shows what the client writes as soon as
it is written, and images the client referenced in place are served as it reads them.
It listens on 127.0.0.1 only, without API keys (as ``ocula serve --no-auth`` does on
loopback), and answers only requests addressed to a loopback name, so a web page whose
DNS name is rebound to 127.0.0.1 cannot read the catalog through the browser.
"""

from __future__ import annotations

import atexit
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from ocula.errors import ValidationError


@dataclass
class _Running:
    service: Any  # held, so its id() is never reused while the app runs
    port: int
    url: str
    server: AbstractContextManager[str]


_apps: dict[int, _Running] = {}
_lock = threading.Lock()


def launch_app(dataset_or_client: Any, port: int | None = None) -> str:
    """Start the web app for an embedded ``Client`` (or one of its ``Dataset``\\ s) and
    return its URL: the datasets page for a client, the dataset's grid for a dataset.

    The app runs until the process exits (or :func:`stop_app`); calling again for the
    same client returns the running app's URL. ``port=None`` takes a free port. A client
    of a remote server gets that server's URL, where the app already runs.
    """
    backend = getattr(dataset_or_client, "_backend", None)
    if backend is None:
        raise ValidationError("launch_app takes an ocula.Client or a Dataset of one, not "
                              f"{type(dataset_or_client).__name__}")
    dataset_id = getattr(dataset_or_client, "id", None)
    path = f"/datasets/{dataset_id}" if isinstance(dataset_id, str) else "/"
    from ocula.core.services import Service

    if not isinstance(backend, Service):  # the HTTP backend: its server serves the app
        return str(backend.url).rstrip("/") + path
    with _lock:
        running = _apps.get(id(backend))
        if running is None or (port is not None and port != running.port):
            if running is not None:
                _stop(running)
            running = _start(backend, port or 0)
            _apps[id(backend)] = running
    return running.url + path


def _start(service: Any, port: int) -> _Running:
    from ocula.server import ServerSettings, create_app
    from ocula.server.background import serve_in_background

    app = create_app(service, auth=False, settings=ServerSettings(auth=False, job_workers=1))
    server = serve_in_background(app, host="127.0.0.1", port=port)
    url = server.__enter__()
    return _Running(service, int(url.rsplit(":", 1)[1]), url, server)


def _stop(running: _Running) -> None:
    running.server.__exit__(None, None, None)


def stop_app(dataset_or_client: Any) -> bool:
    """Stop the app :func:`launch_app` started for this client; False if none runs."""
    with _lock:
        running = _apps.pop(id(getattr(dataset_or_client, "_backend", None)), None)
    if running is not None:
        _stop(running)
    return running is not None


@atexit.register
def _stop_all() -> None:
    with _lock:
        apps = list(_apps.values())
        _apps.clear()
    for running in apps:
        _stop(running)
