"""A request to stop a run from outside: the command line's signal handlers or an orchestrator
set a :class:`Cancel`, the pipeline and the loader look at it between requests."""

from __future__ import annotations

import threading

__all__ = ["Cancel"]


class Cancel(threading.Event):
    """A request to stop a run from outside (SIGINT, SIGTERM), with the exit code it asks for.

    Attributes:
        exit_code: 130 for SIGINT, 143 for SIGTERM (128 + the signal number), 0 until set.
    """

    def __init__(self) -> None:
        super().__init__()
        self.exit_code = 0

    def fire(self, exit_code: int) -> None:
        """Ask the run to stop and exit with ``exit_code``."""
        self.exit_code = exit_code
        self.set()
