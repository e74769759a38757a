"""voiptime-etl: import leads from CSV and Excel files into the Voiptime Cloud dialer."""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__"]
