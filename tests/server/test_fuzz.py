"""Property-based fuzzing of ``/api/v1`` from its own OpenAPI schema (schemathesis):
whatever a client sends, valid or not, the answer is never a 5xx.

Bounded: ``OCULA_FUZZ_EXAMPLES`` examples per operation and generation mode (default
25), on a live server with a key.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from ocula import BoxAnnotation, DatasetItem
from ocula.client.client import Client
from tests.conftest import make_images
from tests.server.conftest import Live

schemathesis = pytest.importorskip("schemathesis",
                                   reason="schemathesis is not installed")
from schemathesis.generation import GenerationMode  # noqa: E402

EXAMPLES = int(os.environ.get("OCULA_FUZZ_EXAMPLES", "25"))


@pytest.mark.slow
def test_no_5xx_anywhere(live: Live, tmp_path: Path) -> None:
    # Something to find: a dataset, items, labels, a slice, a model and a run.
    paths = make_images(tmp_path / "imgs", 2)
    with Client(live.url, api_key=live.key) as c:
        ds = c.create_dataset("fuzz")
        ds.append([DatasetItem(str(p), f"r{i}") for i, p in enumerate(paths)])
        ds.annotate([BoxAnnotation("car", 1, 1, 5, 5, reference_id="r0")])
        ds.create_slice("s", ["r0"])
        c.add_model("m", "m").create_run("run", ds)
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    headers = {"Authorization": f"Bearer {live.key}"}
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/api/v1"):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case: object) -> None:
                answer = case.call(base_url=live.url, headers=headers, timeout=30)
                if answer.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} "
                                    f"{answer.status_code}: {answer.text[:200]}")
                else:
                    # Every answer is JSON (images excepted).
                    kind = answer.headers.get("content-type") or [""]
                    kind = kind[0] if isinstance(kind, list) else kind
                    assert kind.startswith(("application/json", "image/")), kind

            try:
                check()
            except Unsatisfiable:
                # Nothing to get wrong (e.g. no parameters): no negative examples exist.
                assert mode is GenerationMode.NEGATIVE
            tested += 1
    assert tested >= 40
    assert not failures, "\n".join(failures)
