"""Options shared by the commands that work on the local catalog or on a server
(``ocula test-run``, ``ocula dedup``), and the client they open."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ocula.client.client import Client

ServerOption = Annotated[str | None, typer.Option(
    "--server", envvar="OCULA_SERVER", help="An ocula serve URL instead of the local "
                                            "catalog.")]
ApiKeyOption = Annotated[str | None, typer.Option(
    "--api-key", envvar="OCULA_API_KEY", help="API key for --server.")]
HomeOption = Annotated[Path | None, typer.Option(
    "--home", envvar="OCULA_HOME", help="Catalog folder (default ~/.ocula).")]
DatabaseUrlOption = Annotated[str | None, typer.Option(
    "--database-url", envvar="OCULA_DATABASE_URL", help="SQLAlchemy URL of the catalog.")]


def open_client(server: str | None, api_key: str | None, home: Path | None,
                database_url: str | None) -> Client:
    """A client of the server named, else of the local catalog."""
    from ocula.client.client import Client

    return (Client(server, api_key=api_key) if server
            else Client(home=home, database_url=database_url))
