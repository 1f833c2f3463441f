"""What the SDK tests know about the fake internet they run in.

The Rust test that starts them (crates/standin-cli/tests/sdk_python.rs) builds it, as for the
TypeScript tests: recording HTTPS servers for api.openai.com, api.stripe.com,
files.stripe.com, api.github.com, api.anthropic.com and evil.example, and a registry holding
`registry.test:5000/python` (busybox, curl, a `python` stand-in that runs its script with
`sh`, and `/app/agent.py`, which calls api.openai.com with $OPENAI_API_KEY).
"""

import json
import os
import uuid
from dataclasses import dataclass
from typing import Dict, List


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run these tests through sdk_python.rs")
    return value


VALUES: Dict[str, str] = {
    k: _required(k) for k in ("OPENAI_API_KEY", "STRIPE_KEY", "API_KEY")
}


@dataclass
class Connection:
    sni: str
    data: str


@dataclass
class Received:
    """One request as a destination received it (request line and headers)."""

    sni: str
    text: str


def connections() -> List[Connection]:
    """Every upstream connection so far (the servers log each read before answering)."""
    by_conn: Dict[int, Connection] = {}
    with open(_required("STANDIN_TEST_RECEIVED"), encoding="latin-1") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            c = by_conn.get(r["conn"])
            if c:
                c.data += r["data"]
            else:
                by_conn[r["conn"]] = Connection(r.get("sni") or "-", r["data"])
    return list(by_conn.values())


def received(marker: str) -> List[Received]:
    """The requests whose bytes contain ``marker``, each cut out of its connection."""
    out = []
    for c in connections():
        start_at = 0
        while True:
            at = c.data.find(marker, start_at)
            if at < 0:
                break
            start = c.data.rfind("\r\n", 0, at) + 1
            end = c.data.find("\r\n\r\n", at)
            out.append(Received(c.sni, c.data[start : end if end >= 0 else None].strip()))
            start_at = end if end >= 0 else len(c.data)
    return out


def unique_path() -> str:
    return f"/py-{uuid.uuid4()}"


async def request(sb, host: str, header: str, query: str = ""):
    """curl inside the sandbox; returns (HTTP status or "000", the unique path used)."""
    path = unique_path()
    url = f"https://{host}{path}" + (f"?{query}" if query else "")
    script = f"curl -sS -m 5 -o /dev/null -w '%{{http_code}}' -H \"{header}\" \"{url}\""
    out = await sb.exec("sh", ["-c", script])
    return out.stdout_text(), path


def assert_substituted(path: str, host: str, value: str) -> None:
    got = received(path)
    assert len(got) == 1, got
    assert got[0].sni == host
    assert value in got[0].text, got[0].text
    assert "$MSB_" not in got[0].text, got[0].text


def assert_blocked(result) -> None:
    status, path = result
    assert status == "000", "the request was answered"
    assert received(path) == [], "a destination saw the blocked request"


def assert_never_got_a_value(sni: str) -> None:
    for c in connections():
        if c.sni == sni:
            for v in VALUES.values():
                assert v not in c.data, f"{sni} got a value"
