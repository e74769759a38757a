"""The project's own in-memory sandbox of the Voiptime Cloud REST API.

``SandboxServer`` serves the 13 endpoints of ``docs/api.md`` under ``/api`` on a loopback port,
with demo data (or a ``--data`` file read by :func:`load_data`), request counting, and fault
injection for tests. See ``docs/sandbox.md``.

Fault rules (``POST /_sandbox/faults`` with ``{"rules": [rule, ...]}``), in brief: a rule is
``{"route": "METHOD /template" | "*", [nth|every|after: N], [times: K], <action>}`` where the
action is one of ``status: CODE`` (with optional ``retry_after`` and ``body``), ``delay_ms: N``,
``drop: "before"`` or ``drop: "after"``; full rules in :mod:`etl.sandbox.faults`.

Example::

    with SandboxServer() as sandbox:
        requests.get(sandbox.url + "/projects", headers={"Api-Key": "sandbox-key"})
"""

from etl.sandbox.data import load_data
from etl.sandbox.server import DEFAULT_API_KEY, SandboxServer

__all__ = ["DEFAULT_API_KEY", "SandboxServer", "load_data"]
