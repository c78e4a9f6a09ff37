"""Expected failures as one line an operator can act on; anything else keeps its traceback."""

from __future__ import annotations

from fleetctl.context import Context
from fleetctl.stack import StackError

DENIED_CODES = ("AccessDenied", "UnauthorizedOperation", "UnauthorizedAccess")
BAD_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
)


def explain(exc: BaseException, ctx: Context) -> str | None:
    """The message for an expected failure, or None to let it raise."""
    from autoscaler.errors import AutoscalerError, LeaseBusyError, RefreshError
    from botocore import exceptions as bx

    where = f" at {ctx.endpoint_url}" if ctx.endpoint_url else ""
    if isinstance(exc, StackError):
        return str(exc)
    if isinstance(exc, ValueError) and str(exc).startswith("--"):
        return str(exc)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return "no AWS credentials found: use --profile / AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, bx.ProfileNotFound):
        return f"AWS profile not found: {exc}"
    if isinstance(exc, bx.NoRegionError):
        return "no AWS region: use --region, AWS_REGION or AWS_DEFAULT_REGION"
    if isinstance(exc, bx.TokenRetrievalError | bx.SSOError):
        return f"AWS credentials could not be refreshed ({exc}); run `aws sso login`?"
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return f"cannot reach the AWS endpoint{where}: {exc}"
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        operation = getattr(exc, "operation_name", "")
        if code.startswith(DENIED_CODES):
            return f"access denied: {operation} ({code}): {error.get('Message', '')}".rstrip(": ")
        if code in BAD_CREDENTIAL_CODES:
            return f"AWS rejected the credentials: {operation} ({code}): {error.get('Message', '')}"
        return f"AWS error in {operation}: {code}: {error.get('Message', '')}"
    if isinstance(exc, RefreshError):
        return str(exc)  # says what is in the way and that nothing was changed
    if isinstance(exc, LeaseBusyError):
        return "another invocation holds the fleet's decision lease; nothing was changed - try again in a minute"
    if isinstance(exc, AutoscalerError):
        return f"{type(exc).__name__}: {exc}"
    return None


def refused(exc: BaseException) -> bool:
    """A request the control plane refused as asked (nothing changed): exit 2, like bad usage."""
    from autoscaler.errors import RefreshError

    return isinstance(exc, RefreshError)
