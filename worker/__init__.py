"""Fleet worker: a pre-forked, supervised HTTP server (``python -m worker``) and the host CPU
metric publisher (``python -m worker.metrics_publisher``).

Standard library only and Python 3.9 compatible: it runs on Amazon Linux 2023's system python.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "1.0.0"
