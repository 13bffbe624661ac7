"""Browser sessions: a signed cookie standing for an API key, and its CSRF token.

A person logs in with an API key once; the server answers with a cookie
``ocula_session=<kid>.<exp>.<nonce>.<sig>``: the key's id, an expiry and a random
nonce, signed with the server's secret (``signing.Signer``). The key itself is never
stored in the browser. The cookie is checked on every request like a key: a bad
signature, an expired one or a revoked key (``key_id_is_live``) is a 401, so revoking
a key ends every session made with it.

The cookie is ``HttpOnly`` (page scripts cannot read it) and ``SameSite=Strict`` (other
sites' requests do not carry it), ``Secure`` when served over HTTPS. On top of that,
a state-changing request authenticated by the cookie must carry ``X-CSRF-Token``, an
HMAC of the session's nonce that the server writes into each page it renders: a
request a page on another origin could forge carries no such header. Requests with an
API key need no token (no browser sends a key on its own).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ocula.errors import AuthError, OculaError
from ocula.server.signing import Signer

SESSION_COOKIE = "ocula_session"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL_S = 12 * 3600
# Methods that change state (and so need the CSRF header with a cookie).
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_COOKIE = 400


class CsrfError(OculaError):
    """A cookie-authenticated write without the page's token: the caller is known, the
    request is refused (403, so the page does not send the person to log in again)."""

    code = "csrf"
    http_status = 403


@dataclass(frozen=True)
class Session:
    """A checked session: the key id it stands for, its nonce and the key's name."""

    kid: str
    nonce: str
    sig: str
    name: str = ""


def _subject(nonce: str) -> str:
    return f"session:{nonce}"


def new_session(signer: Signer, kid: str, ttl_s: int = SESSION_TTL_S) -> str:
    """The cookie value of a fresh session for the key with id ``kid``."""
    nonce = secrets.token_urlsafe(18)  # URL-safe base64: never a '.'
    signed = signer.sign(_subject(nonce), ttl_s, kid=kid)
    return f"{kid}.{signed['exp']}.{nonce}.{signed['sig']}"


def read_session(signer: Signer, service: Any, value: str | None) -> Session | None:
    """The session ``value`` names, if its signature holds, it has not expired and its
    key is still live; else None."""
    if not value or len(value) > MAX_COOKIE:
        return None
    parts = value.split(".")
    if len(parts) != 4:
        return None
    kid, exp, nonce, sig = parts
    if not signer.check(_subject(nonce), exp, sig, kid=kid):
        return None
    name = service.live_key_name(kid)
    return Session(kid, nonce, sig, name) if name is not None else None


def csrf_token(session: Session) -> str:
    """The token pages send in ``X-CSRF-Token``: an HMAC keyed by the session's own
    signature (itself an HMAC under the server secret, and only in the HttpOnly
    cookie), so the server keeps no state and no other origin can compute it."""
    return hmac.new(session.sig.encode(), b"csrf", hashlib.sha256).hexdigest()


def cookie_session(request: Request) -> str:
    """Authenticate ``request`` by its session cookie (the API-key dependency calls this
    when a request carries no key); returns a name for the caller, or raises
    :class:`AuthError`. Writes must carry the session's CSRF token."""
    state = request.app.state
    session = read_session(state.signer, state.service, request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise AuthError("the session has expired or its API key was revoked; log in again")
    if request.method in _WRITES:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf_token(session).encode()):
            raise CsrfError(f"a request authenticated by the session cookie that changes "
                            f"state must send the page's {CSRF_HEADER} header")
    return session.name


def is_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (directly, or per ``--public-url``)."""
    public = request.app.state.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(SESSION_COOKIE, value, max_age=SESSION_TTL_S, path="/",
                        httponly=True, samesite="strict", secure=is_https(request))


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=is_https(request))
