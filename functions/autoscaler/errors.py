"""Domain errors the adapters raise instead of raw botocore ``ClientError``s."""

from __future__ import annotations


class AutoscalerError(Exception):
    """Base class of the control plane's own errors."""


class CapacityError(AutoscalerError):
    """EC2 has no capacity for the instance type in that AZ (InsufficientInstanceCapacity)."""

    def __init__(self, message: str, *, subnet_id: str | None = None, zone: str | None = None) -> None:
        super().__init__(message)
        self.subnet_id = subnet_id
        self.zone = zone


class InstanceStateError(AutoscalerError):
    """The instance is not in a state that allows the action (IncorrectInstanceState)."""


class InstanceNotVisibleError(AutoscalerError):
    """EC2 does not show a just-created instance yet (InvalidInstanceID.NotFound right after
    RunInstances: "Eventual consistency in the Amazon EC2 API"); it is not gone, retry later."""


class TargetRegistrationError(AutoscalerError):
    """ELB refused to register a target (InvalidTarget); the next reconcile retries."""


class LeaseBusyError(AutoscalerError):
    """Another invocation holds the fleet's decision lease; retry later."""


class StateConflictError(AutoscalerError):
    """A conditional write on the state table lost a race."""


class RefreshError(AutoscalerError):
    """A refresh request that cannot be carried out as asked (nothing was changed)."""
