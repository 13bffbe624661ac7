"""Signed URLs: a capability in the query string instead of an API key.

The Nucleus client PUTs upload bodies to a "signed URL" without credentials, and image
URLs must open in an ``<img>`` tag or a plain ``requests.get``. Both carry
``exp`` (a Unix time) and ``sig`` (an HMAC of the URL's subject and ``exp``). The secret
lives in the server's home folder, so URLs stay valid across restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

SECRET_FILE = "server_secret"


class Signer:
    """Signs and checks ``(subject, exp)`` pairs with one server secret."""

    def __init__(self, secret: bytes):
        self._secret = secret

    @classmethod
    def for_home(cls, root: Path) -> Signer:
        """The signer of the server whose media live under ``root`` (secret created on
        first use, readable by the owner only)."""
        path = Path(root) / SECRET_FILE
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
        return cls(path.read_bytes())

    def _mac(self, subject: str, exp: str) -> str:
        return hmac.new(self._secret, f"{subject}|{exp}".encode(), hashlib.sha256).hexdigest()

    def sign(self, subject: str, ttl_s: int) -> dict[str, str]:
        """Query parameters granting access to ``subject`` for ``ttl_s`` seconds."""
        exp = str(int(time.time()) + ttl_s)
        return {"exp": exp, "sig": self._mac(subject, exp)}

    def check(self, subject: str, exp: str | None, sig: str | None) -> bool:
        """Whether ``sig`` grants ``subject`` and has not expired."""
        if not exp or not sig or not exp.isdecimal() or int(exp) < time.time():
            return False
        return hmac.compare_digest(self._mac(subject, exp), sig)
