"""API keys for the server: created once, stored only as a SHA-256 digest.

A key is shown exactly once, when created; the catalog keeps its digest, so a leaked
database does not leak usable keys. Keys are long random tokens, which is why a plain
(unsalted) SHA-256 is enough here: there is nothing to brute-force as with passwords.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ocula.core.services.base import ServiceBase, iso, now
from ocula.core.store import schema as t
from ocula.errors import AuthError, ConflictError, NotFoundError, ValidationError

KEY_PREFIX = "ocula_"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyService(ServiceBase):
    def create_key(self, name: str) -> dict[str, Any]:
        """Create an API key named ``name``; the result holds the key itself under
        ``key`` and this is the only time it can be read."""
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ValidationError("key name must be a non-empty string of at most 255 "
                                  "characters")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        stamp = now()
        try:
            with self.db.write() as conn:
                conn.execute(t.api_keys.insert().values(
                    name=name.strip(), key_hash=key_digest(key), revoked=False,
                    created_at=stamp))
        except IntegrityError as exc:
            raise ConflictError(f"an API key named {name.strip()!r} already exists") from exc
        return {"name": name.strip(), "key": key, "created_at": iso(stamp)}

    def list_keys(self) -> list[dict[str, Any]]:
        """Names, creation times and revocation state (never the keys)."""
        with self.db.read() as conn:
            rows = conn.execute(select(t.api_keys).order_by(t.api_keys.c.pk)).all()
        return [{"name": r.name, "revoked": bool(r.revoked), "created_at": iso(r.created_at)}
                for r in rows]

    def revoke_key(self, name: str) -> dict[str, Any]:
        """Revoke a key; requests with it are refused from now on."""
        with self.db.write() as conn:
            hit = conn.execute(update(t.api_keys).where(t.api_keys.c.name == name)
                               .values(revoked=True))
        if hit.rowcount == 0:
            raise NotFoundError(f"no API key named {name!r}")
        return {"name": name, "revoked": True}

    def verify_key(self, key: str | None) -> str:
        """The name of the live key ``key``; raise :class:`AuthError` otherwise."""
        return self._live_key(key).name

    def key_id(self, key: str | None) -> str:
        """The id of the live key ``key``, to bind a signed URL to it (see
        :meth:`key_id_is_live`); raise :class:`AuthError` otherwise."""
        return str(self._live_key(key).pk)

    def _live_key(self, key: str | None) -> Any:
        if not key:
            raise AuthError("an API key is required (HTTP Basic username or "
                            "'Authorization: Bearer <key>')")
        with self.db.read() as conn:
            row = conn.execute(select(t.api_keys.c.pk, t.api_keys.c.name,
                                      t.api_keys.c.revoked).where(
                t.api_keys.c.key_hash == key_digest(key))).first()
        if row is None or row.revoked:
            raise AuthError("invalid or revoked API key")
        return row

    def key_id_is_live(self, kid: str) -> bool:
        """Whether the key with id ``kid`` exists and is not revoked."""
        return self.live_key_name(kid) is not None

    def live_key_name(self, kid: str) -> str | None:
        """The name of the key with id ``kid`` if it exists and is not revoked, else
        None (a browser session's edits are recorded under its key's name)."""
        if not (kid.isascii() and kid.isdecimal() and len(kid) <= 9):  # an int4 key
            return None
        with self.db.read() as conn:
            row = conn.execute(select(t.api_keys.c.name, t.api_keys.c.revoked).where(
                t.api_keys.c.pk == int(kid))).first()
        return row.name if row is not None and not row.revoked else None
