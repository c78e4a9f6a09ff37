"""The tag keys the functions, the instances and the IAM policies agree on."""

from __future__ import annotations

FLEET_TAG = "AutoscalerFleet"
"""Tag key carried by every instance the functions manage; IAM conditions use it."""
LIFECYCLE_TAG = "AutoscalerLifecycle"
"""Tag key holding an instance's lifecycle (warming, pool, service, draining)."""
READY_TAG = "AutoscalerReady"
"""Tag the instance sets on itself once ``/ping`` answers through nginx (see userdata/)."""
