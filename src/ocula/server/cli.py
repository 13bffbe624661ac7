"""CLI commands of the server: ``ocula serve``, ``ocula keys ...``, ``ocula jobs``.

Each is a thin wrapper over the library (``create_app``, ``KeyService``, ``JobService``);
the CLI app registers them::

    app.command("serve")(serve_command)
    app.add_typer(keys_app, name="keys")
    app.command("jobs")(jobs_command)
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from ocula.errors import OculaError

DataOpt = Annotated[Path | None, typer.Option(
    "--data", help="Catalog and media folder (default: $OCULA_HOME or ~/.ocula).")]
DatabaseOpt = Annotated[str | None, typer.Option(
    "--database-url", help="Catalog database URL, e.g. postgresql+psycopg://user@host/db "
                           "(media stay under --data).")]

keys_app = typer.Typer(help="API keys for `ocula serve`.", no_args_is_help=True)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _open(data: Path | None, database_url: str | None, local_roots: list[Path] | None = None,
          *, allow_private_urls: bool = True) -> Any:
    from ocula.core.services import Service
    from ocula.fetch import fetch_url

    return Service.open(data, database_url, local_roots=local_roots,
                        allow_private_urls=allow_private_urls, fetcher=fetch_url)


def serve_command(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    data: DataOpt = None,
    database_url: DatabaseOpt = None,
    media_root: Annotated[list[Path] | None, typer.Option(
        "--media-root", help="A server folder clients may reference images in by path "
                             "(repeatable). Default: none, clients must upload.")] = None,
    allow_private_urls: Annotated[bool, typer.Option(
        "--allow-private-urls", help="Let clients name image URLs on loopback or private "
                                     "networks (refused by default).")] = False,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="Serve without API keys (only on a loopback address).")] = False,
    public_url: Annotated[str | None, typer.Option(
        help="scheme://host[:port] clients reach the server at, when behind a proxy "
             "(used in image and upload URLs).")] = None,
    max_upload_mb: Annotated[int, typer.Option(help="Largest upload request (MB).")] = 512,
    max_json_mb: Annotated[int, typer.Option(help="Largest JSON request (MB).")] = 64,
    job_workers: Annotated[int, typer.Option(help="Threads running jobs.")] = 2,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the REST API (/api/v1, docs at /docs) and the Nucleus protocol
    (/v1/nucleus) over one catalog."""
    if no_auth and not is_loopback(host):
        raise typer.BadParameter(f"--no-auth would let anyone who reaches {host} read and "
                                 "change every dataset; bind a loopback address "
                                 "(127.0.0.1) or create a key with `ocula keys create`",
                                 param_hint="--no-auth")
    import uvicorn

    from ocula.server import ServerSettings, create_app

    roots = [Path(r).expanduser().resolve() for r in media_root or []]
    try:
        service = _open(data, database_url, local_roots=roots,
                        allow_private_urls=allow_private_urls)
    except OculaError as exc:  # e.g. a media root over the home
        raise typer.BadParameter(exc.message, param_hint="--media-root") from exc
    if not no_auth and not any(not k["revoked"] for k in service.list_keys()):
        typer.echo("No API key exists yet: create one with `ocula keys create NAME`.",
                   err=True)
    mb = 1024 * 1024
    settings = ServerSettings(auth=not no_auth, max_upload_bytes=max_upload_mb * mb,
                              max_json_bytes=max_json_mb * mb, public_url=public_url,
                              job_workers=job_workers)
    logging.basicConfig(level=log_level.upper())
    try:
        uvicorn.run(create_app(service, auth=not no_auth, settings=settings), host=host,
                    port=port, log_level=log_level, timeout_graceful_shutdown=30)
    finally:
        service.close()


@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Argument(help="A name for the key.")],
                data: DataOpt = None, database_url: DatabaseOpt = None) -> None:
    """Create an API key and print it (it is shown only this once)."""
    service = _open(data, database_url)
    try:
        key = service.create_key(name)
    except OculaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        service.close()
    typer.echo(key["key"])
    typer.echo(f"Key {key['name']!r} created. Store it now: it cannot be shown again.",
               err=True)


@keys_app.command("list")
def keys_list(data: DataOpt = None, database_url: DatabaseOpt = None) -> None:
    """List API keys (names, creation time, revoked or not; never the keys)."""
    service = _open(data, database_url)
    try:
        for k in service.list_keys():
            state = "revoked" if k["revoked"] else "active"
            typer.echo(f"{k['name']}\t{state}\t{k['created_at']}")
    finally:
        service.close()


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")],
                data: DataOpt = None, database_url: DatabaseOpt = None) -> None:
    """Revoke an API key: requests with it are refused from now on."""
    service = _open(data, database_url)
    try:
        service.revoke_key(name)
    except OculaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        service.close()
    typer.echo(f"Key {name!r} revoked.")


def jobs_command(
    data: DataOpt = None,
    database_url: DatabaseOpt = None,
    status: Annotated[str | None, typer.Option(
        help="Only jobs with this status (Queued, Running, Completed, Errored_User, "
             "Errored_Server, Errored_Partial).")] = None,
    limit: Annotated[int, typer.Option(help="How many (newest first).")] = 20,
) -> None:
    """Show the server's jobs (long appends, commits): status, progress, message."""
    service = _open(data, database_url)
    try:
        rows = service.list_jobs(status=status, limit=limit)
    finally:
        service.close()
    if not rows:
        typer.echo("No jobs.")
        return
    for j in rows:
        progress = f"{j['completed_steps']}/{j['total_steps']}" if j["total_steps"] else "-"
        typer.echo(f"{j['job_id']}\t{j['type']}\t{j['status']}\t{progress}\t"
                   f"{j['created_at']}\t{j['message'] or ''}")
