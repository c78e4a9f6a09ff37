"""A stand-in for the ``aws`` command on a test's PATH (:func:`tests.support.lambda_layers.fake_aws_bin`).

It knows one command, ``aws lambda get-layer-version-by-arn --arn ARN --region R`` with
``--query`` (JMESPath, the library the CLI uses) and ``--output text|json``, and sends it to the
endpoint in ``AWS_ENDPOINT_URL_LAMBDA`` (the variable the real CLI reads for Lambda's endpoint).
Text output is the CLI's for a scalar or a list of scalars: the values on one line, tab-separated.
Exit codes are the AWS CLI's: 252 bad command line, 253 no region, 254 the service answered an
error, 255 anything else. The CLI's own retries are not modelled: a failure is returned at once.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import jmespath

OPERATION = "GetLayerVersionByArn"


def _text(value: Any) -> str:
    if isinstance(value, list) and not any(isinstance(v, (dict, list)) for v in value):
        return "\t".join("None" if v is None else str(v) for v in value)
    if isinstance(value, (dict, list)):
        raise NotImplementedError("the fake formats scalars and lists of scalars only")
    return "None" if value is None else str(value)


def main(argv: list[str]) -> int:
    if argv[:2] != ["lambda", "get-layer-version-by-arn"] or len(argv) % 2:
        print(f"fake aws: unsupported command line: {argv}", file=sys.stderr)
        return 252
    options = dict(zip(argv[2::2], argv[3::2]))  # pairs: the length is even (checked above)
    unknown = set(options) - {"--arn", "--region", "--query", "--output"}
    if unknown or "--arn" not in options:
        print(f"fake aws: unsupported or missing options: {sorted(unknown) or '--arn'}", file=sys.stderr)
        return 252
    if not (options.get("--region") or os.environ.get("AWS_DEFAULT_REGION")):
        print("You must specify a region.", file=sys.stderr)
        return 253
    endpoint = os.environ["AWS_ENDPOINT_URL_LAMBDA"]
    url = f"{endpoint}/2018-10-31/layers?find=LayerVersion&Arn={urllib.parse.quote(options['--arn'], safe='')}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        code = exc.headers.get("x-amzn-ErrorType", "Unknown")
        message = json.loads(exc.read() or b"{}").get("message", "")
        print(f"\nAn error occurred ({code}) when calling the {OPERATION} operation: {message}", file=sys.stderr)
        return 254
    except OSError:
        print(f'\nCould not connect to the endpoint URL: "{url}"', file=sys.stderr)
        return 255
    if "--query" in options:
        answer = jmespath.search(options["--query"], answer)
    output = options.get("--output", "json")
    print(_text(answer) if output == "text" else json.dumps(answer, indent=4))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
