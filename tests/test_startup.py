"""What ``import ocula`` and the command line load at start (issue 12, "Fast start").

Each check runs in a fresh interpreter, since this test session has imported everything
already. Speed itself is measured by ``benchmarks/startup.py``, never here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The server stack and the catalog's database stack.
SERVER_AND_DATABASE = ("fastapi", "uvicorn", "starlette", "pydantic", "sqlalchemy",
                       "sqlalchemy.dialects.postgresql", "alembic")


def _run(code: str) -> str:
    """stdout of ``python -c code`` in a fresh interpreter that imports this checkout."""
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": path})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _loaded_after(code: str) -> set[str]:
    out = _run(f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))")
    return set(json.loads(out.splitlines()[-1]))


def test_import_ocula_loads_no_server_database_or_numpy() -> None:
    loaded = _loaded_after("import ocula")
    assert not loaded & {*SERVER_AND_DATABASE, "numpy", "httpx", "PIL", "torch"}


def test_the_command_line_registers_its_commands_without_their_stacks() -> None:
    loaded = _loaded_after("import ocula.cli.main")
    assert not loaded & {*SERVER_AND_DATABASE, "numpy", "httpx", "PIL"}


def test_every_public_name_imports_as_before() -> None:
    out = _run("import ocula\nfrom ocula import *\n"
               "from ocula import Client, DatasetItem, BoxAnnotation, compare, errors\n"
               "print(all(name in globals() for name in ocula.__all__))")
    assert out.split() == ["True"]
    import ocula

    assert all(getattr(ocula, name) is not None for name in ocula.__all__)
    assert set(ocula.__all__) <= set(dir(ocula))
    with pytest.raises(AttributeError):
        _ = ocula.NoSuchName  # type: ignore[attr-defined]
