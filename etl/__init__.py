"""voiptime-etl: import leads from CSV and Excel files into the Voiptime Cloud dialer.

The library call for schedulers and orchestrators is :func:`etl.import_files` (it returns a
:class:`etl.RunSummary`); see ``docs/orchestrators.md``. They are loaded on first use, so
``import etl`` stays light.
"""

import logging
from typing import Any

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["RunSummary", "__version__", "import_files"]


def __getattr__(name: str) -> Any:
    if name in ("RunSummary", "import_files"):
        from etl import jobs

        return getattr(jobs, name)
    raise AttributeError(f"module 'etl' has no attribute {name!r}")
