"""``python -m worker``: run the HTTP worker (see ``worker.server``)."""

from __future__ import annotations

import sys

from worker.server import main

if __name__ == "__main__":
    sys.exit(main())
