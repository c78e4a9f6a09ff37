"""The tag keys the functions, the instances and the IAM policies agree on."""

from __future__ import annotations

FLEET_TAG = "AutoscalerFleet"
"""Tag key carried by every instance the functions manage; IAM conditions use it."""
LIFECYCLE_TAG = "AutoscalerLifecycle"
"""Tag key holding an instance's lifecycle (warming, pool, service, draining)."""
READY_TAG = "AutoscalerReady"
"""Tag the instance sets on itself once ``/ping`` answers through nginx (see userdata/)."""
VERSION_TAG = "aws:ec2launchtemplate:version"
"""Added by EC2 to every instance launched from a launch template: the version it was launched from."""
