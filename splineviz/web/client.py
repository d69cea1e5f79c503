"""A Dash client over plain HTTP, speaking to the server as the browser's renderer does: for load and fault tests.

A page load gives the signed ``end_id``; a background callback is started with one POST and polled with the
signed ``cacheKey``/``job`` handles until it answers. Every outcome the renderer can meet is kept apart, because
the silent ones are what lose jobs: a result, an error, a 204 (the renderer drops the job without a word), and a
failed request.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import requests

_CONFIG = re.compile(r'<script id="_dash-config" type="application/json">(.*?)</script>', re.S)


@dataclass
class Outcome:
    """How one background job ended, as the page would see it."""

    kind: str  # "result", "error" (HTTP error, or an on_error answer), "silent" (204: dropped), "timeout"
    value: Any = None
    polls: int = 0
    seconds: float = 0.0
    progress: list = field(default_factory=list)


def _outputs(output: str) -> list[dict[str, str]] | dict[str, str]:
    """The renderer's ``outputs`` field from a callback's output string ("a.b" or "..a.b...c.d..")."""
    def spec(item: str) -> dict[str, str]:
        ident, prop = item.rsplit(".", 1)
        return {"id": ident, "property": prop.split("@")[0]}

    if output.startswith(".."):
        return [spec(item) for item in output[2:-2].split("...")]
    return spec(output)


class DashClient:
    """One browser tab: a page load's end_id, the app's callback list, and a keep-alive HTTP session."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()
        self.end_id: str | None = None
        self._dependencies: list[dict[str, Any]] | None = None

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, timeout=self.timeout)

    def load(self, path: str = "/") -> requests.Response:
        """Load a page as a browser would, keeping its signed end_id for the callbacks that follow."""
        response = self.get(path)
        response.raise_for_status()
        match = _CONFIG.search(response.text)
        if match is None:
            raise ValueError(f"{path} is not a Dash page (no _dash-config)")
        self.end_id = json.loads(match.group(1)).get("end_id")
        return response

    def dependencies(self) -> list[dict[str, Any]]:
        if self._dependencies is None:
            response = self.get("/_dash-dependencies")
            response.raise_for_status()
            self._dependencies = response.json()
        return self._dependencies

    def find(self, output: str, trigger: str | None = None) -> dict[str, Any]:
        """The callback writing ``output`` ("id.prop"), triggered by ``trigger`` ("id.prop") if given."""
        def matches(dep: dict[str, Any]) -> bool:
            outs = {f"{o['id']}.{o['property']}" for o in _as_list(_outputs(dep["output"]))}
            ins = {f"{i['id']}.{i['property']}" for i in dep["inputs"]}
            return output in outs and (trigger is None or trigger in ins)

        found = [dep for dep in self.dependencies() if not dep.get("no_output") and matches(dep)]
        if len(found) != 1:
            raise LookupError(f"{len(found)} callbacks write {output} (trigger {trigger}); expected one")
        return found[0]

    def initial_values(self) -> dict[str, Any]:
        """Every component's initial property values from /_dash-layout, as "id.prop" -> value."""
        values: dict[str, Any] = {}

        def walk(node: Any) -> None:
            if isinstance(node, list):
                for item in node:
                    walk(item)
            elif isinstance(node, dict) and "props" in node:
                props = node["props"]
                if isinstance(props.get("id"), str):
                    values.update({f"{props['id']}.{k}": v for k, v in props.items() if k not in ("id", "children")})
                walk(props.get("children"))

        response = self.get("/_dash-layout")
        response.raise_for_status()
        walk(response.json())
        return values

    def payload(self, dep: dict[str, Any], values: dict[str, Any], changed: Iterable[str]) -> dict[str, Any]:
        """The request body for callback ``dep`` with inputs and state taken from ``values`` ("id.prop" -> value)."""
        def fill(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{"id": i["id"], "property": i["property"], "value": values.get(f"{i['id']}.{i['property']}")}
                    for i in items]

        return {"output": dep["output"], "outputs": _outputs(dep["output"]), "inputs": fill(dep["inputs"]),
                "changedPropIds": list(changed), "state": fill(dep.get("state", []))}

    def post(self, payload: dict[str, Any], **args: str) -> requests.Response:
        params = {"endId": self.end_id, **args} if self.end_id else args
        return self.http.post(self.base + "/_dash-update-component", params=params, json=payload,
                              timeout=self.timeout)

    def call(self, payload: dict[str, Any]) -> requests.Response:
        """A plain (not background) callback: one request, one answer."""
        return self.post(payload)

    def run_job(self, payload: dict[str, Any], interval: float = 0.2, limit: float = 120.0) -> Outcome:
        """Start a background callback and poll it like the renderer until it answers (or ``limit`` seconds)."""
        start = time.monotonic()
        response = self.post(payload)
        if response.status_code != 200:
            return Outcome("error", f"start: HTTP {response.status_code}", 0, time.monotonic() - start)
        handles = response.json()
        if "cacheKey" not in handles:
            return Outcome("result", handles, 0, time.monotonic() - start)
        # the renderer sends the inputs as null while polling: the handles carry the job
        blank = {**payload, "inputs": [{**i, "value": None} for i in payload["inputs"]],
                 "state": [{**s, "value": None} for s in payload["state"]]}
        outcome = Outcome("timeout")
        while time.monotonic() - start < limit:
            time.sleep(interval)
            outcome.polls += 1
            try:
                response = self.post(blank, cacheKey=handles["cacheKey"], job=handles["job"])
            except requests.RequestException as exc:
                outcome.kind, outcome.value = "error", f"poll failed: {exc}"
                break
            if response.status_code == 204:
                outcome.kind = "silent"
                break
            if response.status_code != 200:
                outcome.kind, outcome.value = "error", f"poll: HTTP {response.status_code}: {response.text[:300]}"
                break
            data = response.json()
            if "progress" in data:
                outcome.progress.append(data["progress"])
            if "response" in data:
                outcome.kind, outcome.value = "result", data["response"]
                break
        outcome.seconds = time.monotonic() - start
        return outcome


def _as_list(specs: Any) -> list[dict[str, str]]:
    return specs if isinstance(specs, list) else [specs]
