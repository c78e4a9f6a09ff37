"""botocore event hooks that make a client's calls behave as AWS would where moto does not.

Each hook works on one client (``client.meta.events``), so a fake's behaviour reaches only the
code that uses that client. botocore's events, in call order: ``before-parameter-build`` sees
the API parameters; ``before-call`` may return the response instead of sending the request;
``before-send`` sees every HTTP attempt (retries included); ``after-call`` sees the parsed
response (boto3 "Extensibility guide", botocore "Events").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from botocore.model import OperationModel

# The hooks see what botocore's event system hands them: API parameters before serialization
# and parsed responses as plain dicts of any operation, hence dict[str, Any].
Params = dict[str, Any]
Responder = Callable[[Params], Params | None]
Observer = Callable[[Params, Params], None]

_PARAMS = "awsfake.params"


def error(code: str, message: str) -> Params:
    """A response that fails the call with ``code`` (for a ``respond`` of :func:`answer`)."""
    return {"Error": {"Code": code, "Message": message}}


def params_of(context: Params) -> Params:
    """The API parameters of the call a later event belongs to (see :func:`stash_params`)."""
    stashed: Params = context.get(_PARAMS, {})
    return stashed


def stash_params(client: BaseClient) -> None:
    """Keep every call's API parameters in its request context: later events (before-call,
    after-call) see only the serialized request. Idempotent per client."""

    def stash(params: Params, context: Params, **_: Any) -> None:
        context[_PARAMS] = dict(params)

    client.meta.events.register("before-parameter-build.*.*", stash, unique_id=_PARAMS)


def answer(client: BaseClient, operation: str, respond: Responder) -> None:
    """Answer ``operation`` (``service-id.Operation``) with ``respond(api_params)`` instead of
    moto; ``None`` lets moto answer, a dict with "Error" (:func:`error`) fails the call."""

    def call(context: Params, **_: Any) -> tuple[AWSResponse, Params] | None:
        result = respond(params_of(context))
        if result is None:
            return None
        if "Error" in result:
            return AWSResponse("https://awsfake.invalid", 400, HTTPHeaders(), None), result
        result.setdefault("ResponseMetadata", {"HTTPStatusCode": 200})
        return AWSResponse("https://awsfake.invalid", 200, HTTPHeaders(), None), result

    stash_params(client)
    # botocore-stubs types every handler as returning None; a before-call handler's return value
    # is the response (botocore emits before-call with emit_until_response; boto3 "Extensibility
    # guide": a handler may return a value). Hence the untyped view of the event system here.
    events: Any = client.meta.events
    events.register(f"before-call.{operation}", call)


def observe(client: BaseClient, operation: str, seen: Observer) -> None:
    """Call ``seen(api_params, parsed)`` after every successful ``operation``."""

    def after(http_response: AWSResponse | None, parsed: Params, context: Params, **_: Any) -> None:
        if http_response is not None and http_response.status_code < 300:
            seen(params_of(context), parsed)

    stash_params(client)
    client.meta.events.register(f"after-call.{operation}", after)


def inject_faults(client: BaseClient, faults: dict[str, list[str]]) -> None:
    """Fail calls with the error codes queued in ``faults`` (operation name -> codes, one
    consumed per call), before moto sees them: nothing changes, as when AWS refuses a call."""

    def fault(model: OperationModel, **_: Any) -> None:
        pending = faults.get(model.name)
        if pending:
            code = pending.pop(0)
            raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, model.name)

    client.meta.events.register("before-call.*.*", fault)


def throttle(client: BaseClient, operation: str, times: int, code: str = "RequestLimitExceeded") -> list[int]:
    """Answer the next ``times`` HTTP attempts of ``operation`` (``ec2.RunInstances``) with a
    throttling error. Returns a list that counts the attempts seen.

    Hooked at before-send, the only event botocore emits for every retried attempt, so its retry
    handler sees a real error response and retries. botocore emits before-send to every handler
    (moto's included) and uses the first response; so that moto, which answers after us, does not
    carry out a throttled attempt, the attempt is turned into a DryRun: EC2 checks it and changes
    nothing (EC2 API reference, "DryRun"). EC2 only: other services have no DryRun.
    """
    attempts: list[int] = []

    def send(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) > times:
            return None
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        request.body = f"{body}&DryRun=true".encode()
        request.headers["Content-Length"] = str(len(request.body))
        xml = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>Request limit exceeded.</Message></Error>"
            "</Errors><RequestID>throttled</RequestID></Response>"
        )
        return AWSResponse(request.url, 400, HTTPHeaders(), _Raw(xml.encode()))

    events: Any = client.meta.events  # a before-send handler returns the response: see answer()
    events.register_first(f"before-send.{operation}", send)
    return attempts


class _Raw:
    """The minimal raw body botocore reads from an AWSResponse."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data

    def read(self, *_: Any) -> bytes:
        return self._data
