"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from etl.sandbox import SandboxServer


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A started sandbox API on a free loopback port, with the demo data; stopped afterwards.

    ``sandbox.url`` is the API base (``http://127.0.0.1:PORT/api``, key ``sandbox-key``);
    ``sandbox.base_url + "/_sandbox/state"`` shows what it stored and counted.
    """
    server = SandboxServer().start()
    try:
        yield server
    finally:
        server.stop()
