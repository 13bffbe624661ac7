"""The folder tree is the architecture: the core imports no adapter.

``ocula.core`` (types, masks, storage, evaluation, query, services) must not import the
adapters around it (``io``, ``server``, ``client``, ``cli``, ``demo``, ``detectors``,
``integrations``) nor the libraries only adapters need (HTTP, web, terminal, PyTorch).
Every import counts, including those inside functions, so a lazy import cannot hide a
dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ocula

CORE = Path(ocula.__file__).parent / "core"
ADAPTERS = ("ocula.io", "ocula.server", "ocula.client", "ocula.cli", "ocula.demo",
            "ocula.detectors", "ocula.integrations")
ADAPTER_LIBRARIES = ("httpx", "fastapi", "starlette", "uvicorn", "typer", "rich", "jinja2",
                     "requests", "torch", "torchvision")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _forbidden(module: str) -> bool:
    return any(module == bad or module.startswith(bad + ".")
               for bad in (*ADAPTERS, *ADAPTER_LIBRARIES))


def test_core_imports_no_adapter() -> None:
    offences = [f"{path.relative_to(CORE.parent)}:{line}: {module}"
                for path in sorted(CORE.rglob("*.py"))
                for line, module in _imports(path) if _forbidden(module)]
    assert offences == [], "the core imports adapters:\n" + "\n".join(offences)


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ocula.io.coco import export_coco\n    import httpx\n")
    assert [m for _, m in _imports(probe) if _forbidden(m)] == ["ocula.io.coco", "httpx"]
