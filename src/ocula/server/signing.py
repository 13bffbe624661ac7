"""Signed URLs: a capability in the query string instead of an API key.

The Nucleus client PUTs upload bodies to a "signed URL" without credentials, and image
URLs must open in an ``<img>`` tag or a plain ``requests.get``. Both carry
``exp`` (a Unix time) and ``sig`` (an HMAC of the URL's subject and ``exp``); image URLs
also ``kid``, the id of the API key they were made for, which the image route checks is
still live. The secret lives in the server's home folder (0700, the file 0600; no media
root may overlap the home), so URLs stay valid across restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from ocula.errors import ConflictError

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

    def _mac(self, subject: str, exp: str, kid: str | None) -> str:
        signed = f"{subject}|{exp}" if kid is None else f"{subject}|{kid}|{exp}"
        return hmac.new(self._secret, signed.encode(), hashlib.sha256).hexdigest()

    def sign(self, subject: str, ttl_s: int, *, kid: str | None = None,
             window_s: int = 1, now: float | None = None) -> dict[str, str]:
        """Query parameters granting access to ``subject`` for ``ttl_s`` seconds; with
        ``kid``, also bound to that API key id (the reader checks the key is live).

        ``window_s`` rounds the expiry up to a multiple of it, so every URL signed for
        one subject within a window is the same URL (valid ``ttl_s`` to
        ``ttl_s + window_s`` seconds). ``now`` stands for the current time."""
        at = time.time() if now is None else now
        exp = str(-(-(int(at) + ttl_s) // window_s) * window_s)
        params = {"exp": exp, "sig": self._mac(subject, exp, kid)}
        return params if kid is None else {"exp": exp, "kid": kid, "sig": params["sig"]}

    def check(self, subject: str, exp: str | None, sig: str | None, *,
              kid: str | None = None) -> bool:
        """Whether ``sig`` grants ``subject`` (for key ``kid``) and has not expired."""
        if not exp or not sig or not exp.isdecimal() or int(exp) < time.time():
            return False
        # As bytes: compare_digest raises on str with non-ASCII characters.
        return hmac.compare_digest(self._mac(subject, exp, kid).encode(), sig.encode())


def use_once(folder: Path, exp: str, sig: str) -> None:
    """Mark the checked signature ``sig`` (expiring at ``exp``) used, or raise
    :class:`ConflictError` if it was: an upload URL seen in a log or a proxy cannot
    replace the upload. Marks of expired signatures are swept here, as their expiry
    refuses them anyway."""
    folder.mkdir(exist_ok=True)
    now = time.time()
    for mark in folder.iterdir():
        stamp = mark.name.partition("-")[0]
        if not stamp.isdecimal() or int(stamp) < now:
            mark.unlink(missing_ok=True)
    try:  # sig matched our own HMAC, so it is hex digits: a safe file name
        os.close(os.open(folder / f"{exp}-{sig}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError as exc:
        raise ConflictError("this upload URL was already used; ask for a new one") from exc
