"""Which AWS APIs the control-plane code calls, recorded with botocore event hooks.

Only calls made from ``functions/autoscaler`` (or from powertools Idempotency on its behalf)
count: a test's own set-up calls (CreateVpc, a test peeking at instances) are not the code's.
The IAM contract test compares this set with the template's policy.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

IAM_PREFIX = {"ec2": "ec2", "elbv2": "elasticloadbalancing", "cloudwatch": "cloudwatch", "dynamodb": "dynamodb"}
CODE = (str(Path(__file__).resolve().parents[2] / "functions" / "autoscaler"), "aws_lambda_powertools")
RECORDED: set[str] = set()


def _called_by_code() -> bool:
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(CODE[0]) or (CODE[1] in filename and "idempotency" in filename):
            return True
        frame = frame.f_back
    return False


def record(model: Any, **_: Any) -> None:
    service = model.service_model.service_name
    if service in IAM_PREFIX and _called_by_code():
        RECORDED.add(f"{IAM_PREFIX[service]}:{model.name}")


def install(client: Any) -> None:
    client.meta.events.register("before-call.*.*", record)
