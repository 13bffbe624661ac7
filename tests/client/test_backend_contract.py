"""One typed contract (``ocula.core.contract.Backend``) for the embedded service and the
HTTP backend: every public service method is in it (or is server-local, with a reason),
and the contract, the service and the HTTP backend agree on every signature."""

from __future__ import annotations

import inspect
from typing import Any

from ocula.client.http import HttpBackend
from ocula.core.contract import SERVER_LOCAL, Backend
from ocula.core.services import Service


def _public(cls: type) -> dict[str, Any]:
    return {name: fn for name, fn in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_")}


def _shape(fn: Any) -> list[tuple[str, Any, Any, str]]:
    """Name, kind, default and annotation text of each parameter, and the return."""
    sig = inspect.signature(fn)
    params = [(p.name, p.kind, p.default, str(p.annotation).replace("'", ""))
              for p in sig.parameters.values()]
    return [*params, ("return", None, None, str(sig.return_annotation).replace("'", ""))]


def test_every_public_service_method_is_in_the_contract_or_server_local() -> None:
    service = set(_public(Service))
    contract = set(_public(Backend))
    assert service - contract - set(SERVER_LOCAL) == set(), "add them to Backend"
    assert contract - service == set(), "the contract names methods the service lacks"
    assert set(SERVER_LOCAL) <= service and not set(SERVER_LOCAL) & contract


def test_the_http_backend_implements_the_whole_contract() -> None:
    http = _public(HttpBackend)
    missing = sorted(set(_public(Backend)) - set(http))
    assert missing == [], f"no HTTP twin for {missing}"


def test_signatures_agree() -> None:
    service, http = _public(Service), _public(HttpBackend)
    differ = [name for name, fn in _public(Backend).items()
              if not _shape(fn) == _shape(service[name]) == _shape(http[name])]
    assert differ == []
