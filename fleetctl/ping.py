"""``fleetctl ping``: GET /ping through the stack's LoadBalancerUrl, N times, with latency."""

from __future__ import annotations

import argparse
import statistics
import time
import urllib.error
import urllib.request
from typing import Any

from fleetctl.context import Context
from fleetctl.render import Renderer

COLUMNS = (("try", "TRY"), ("result", "RESULT"), ("code", "HTTP"), ("ms", "LATENCY MS"), ("detail", "DETAIL"))


def probe(url: str, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "fleetctl-ping"})  # noqa: S310 - http(s) URL of the stack
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(200).decode("utf-8", "replace").strip()
            code = response.status
    except urllib.error.HTTPError as exc:
        return _row("error", exc.code, started, f"HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return _row("error", None, started, str(reason))
    return _row("ok" if 200 <= code < 300 else "error", code, started, body[:60])


def _row(result: str, code: int | None, started: float, detail: str) -> dict[str, Any]:
    return {"result": result, "code": code, "ms": round((time.perf_counter() - started) * 1000, 1), "detail": detail}


def ping(ctx: Context, args: argparse.Namespace, out: Renderer) -> int:
    base = args.url or ctx.stack.output("LoadBalancerUrl")
    url = base.rstrip("/") + "/ping"
    tries: list[dict[str, Any]] = []
    for n in range(1, args.count + 1):
        tries.append({"try": n, **probe(url, args.timeout)})
        if n < args.count and args.interval > 0:
            time.sleep(args.interval)
    ok = [t["ms"] for t in tries if t["result"] == "ok"]
    summary = {
        "url": url,
        "tries": len(tries),
        "ok": len(ok),
        "failures": len(tries) - len(ok),
        "p50_ms": round(statistics.median(ok), 1) if ok else None,
        "max_ms": max(ok) if ok else None,
    }
    if args.output == "json":
        out.json({**summary, "results": tries})
    else:
        out.line(f"GET {url}")
        out.table(COLUMNS, tries)
        out.line()
        line = f"{summary['ok']}/{summary['tries']} ok"
        if ok:
            line += f", latency p50 {summary['p50_ms']} ms, max {summary['max_ms']} ms"
        out.line(out.style(line, "green" if not summary["failures"] else "red"))
    return 0 if not summary["failures"] else 1
