"""``python -m fleetctl``: the same as the console script."""

from fleetctl.cli import main

raise SystemExit(main())
