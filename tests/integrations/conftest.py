"""The PyTorch tests use the client suite's backends: embedded and a live server."""

from tests.client.conftest import any_client  # noqa: F401 - a fixture, used by name
