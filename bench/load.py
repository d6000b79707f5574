"""Load without loss: N submissions and their verifications from C concurrent clients against a
local run over loopback HTTP, then every request followed to the controller's webhook.

Counted: lost (accepted but never delivered), duplicated (two request ids for one submission, or a
request that reached the controller as two deliveries: two webhook-ids), 5xx answers; throughput of
the submit and verify phases and their p50/p99. A client retries a refused connection or a 503 with
the same Idempotency-Key, as a browser or an SDK would; the retry must not duplicate anything.

`make load` (2,000 requests, 20 clients) refreshes its section of docs/benchmarks.md; `make bench`
includes it; tests/integration/test_load.py runs 200 in `make test`.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from local import loopback

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- load:start -->", "<!-- load:end -->"
JSON = {"Accept": "application/json"}
RETRIES = 3


@dataclass
class Phase:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> dict:
        ordered = sorted(self.latencies_ms)
        pick = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0  # noqa: E731
        return {
            "n": len(ordered),
            "per_second": len(ordered) / self.seconds if self.seconds else 0.0,
            "p50_ms": pick(0.5),
            "p99_ms": pick(0.99),
            "statuses": dict(self.statuses),
        }


class Client:
    """One session per worker thread: keep-alive, like a browser tab."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.local = threading.local()
        self.lock = threading.Lock()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def post(self, phase: Phase, path: str, body: dict, headers: dict | None = None) -> requests.Response | None:
        answer = None
        for attempt in range(RETRIES):
            started = time.perf_counter()
            try:
                answer = self.session().post(
                    self.base_url + path, json=body, headers={**JSON, **(headers or {})}, timeout=60
                )
            except requests.ConnectionError:
                answer = None
            elapsed = (time.perf_counter() - started) * 1000
            with self.lock:
                phase.latencies_ms.append(elapsed)
                phase.statuses[answer.status_code if answer is not None else "connection"] += 1
            if answer is not None and answer.status_code != 503:
                return answer
            time.sleep(0.2 * (attempt + 1))
        return answer


def _codes(base_url: str, wanted: set[str], timeout: float) -> dict[str, str]:
    codes: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while wanted - codes.keys() and time.monotonic() < deadline:
        for mail in requests.get(base_url + "/_dev/outbox", timeout=60).json():
            for request_id, code in re.findall(r"/verify/(dsr_\w+)\?code=(\d{6})", mail.get("text") or ""):
                codes[request_id] = code
        time.sleep(1)
    return codes


def _deliveries(base_url: str, wanted: set[str], timeout: float) -> dict[str, set[str]]:
    """request id -> the webhook-ids it reached the controller with."""
    deadline = time.monotonic() + timeout
    while True:
        seen: dict[str, set[str]] = {}
        for delivery in requests.get(base_url + "/_dev/webhooks", timeout=60).json():
            body = delivery.get("body")
            if isinstance(body, dict) and body.get("type") == "dsr.request.forwarded" and delivery["answered"] < 300:
                seen.setdefault(body["data"]["request_id"], set()).add(delivery["webhook_id"])
        if wanted <= seen.keys() or time.monotonic() > deadline:
            return seen
        time.sleep(1)


def submit_all(client: Client, phase: Phase, prefix: str, total: int, concurrency: int) -> list[str]:
    """`total` submissions from `concurrency` clients, each with an Idempotency-Key; the accepted ids."""

    def submit_one(n: int) -> str | None:
        body = {"site": "demo", "type": "access", "email": f"{prefix}-{n}@example.org"}
        answer = client.post(phase, "/v1/requests", body, {"Idempotency-Key": f"{prefix}-{n}"})
        return answer.json()["request_id"] if answer is not None and answer.status_code == 202 else None

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        submitted = list(pool.map(submit_one, range(total)))
    phase.seconds = time.perf_counter() - started
    return [request_id for request_id in submitted if request_id]


def verify_all(client: Client, phase: Phase, ids: list[str], codes: dict[str, str], concurrency: int) -> list[str]:
    """Each request verified with its mailed code by `concurrency` clients; the verified ids."""

    def verify_one(request_id: str) -> bool:
        if request_id not in codes:
            return False
        answer = client.post(phase, f"/v1/requests/{request_id}/verify", {"code": codes[request_id]})
        return answer is not None and answer.status_code == 200

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        verified = [rid for rid, ok in zip(ids, pool.map(verify_one, ids), strict=True) if ok]
    phase.seconds = time.perf_counter() - started
    return verified


def run(base_url: str, total: int = 2000, concurrency: int = 20, wait_seconds: float = 600) -> dict:
    client = Client(base_url)
    submit, verify = Phase(), Phase()
    load_before = os.getloadavg()[0]
    accepted = submit_all(client, submit, f"load-{uuid.uuid4().hex[:8]}", total, concurrency)
    codes = _codes(base_url, set(accepted), timeout=wait_seconds)
    verified = verify_all(client, verify, accepted, codes, concurrency)
    started = time.perf_counter()
    delivered = _deliveries(base_url, set(verified), timeout=wait_seconds)
    drain = time.perf_counter() - started

    statuses = submit.statuses + verify.statuses
    return {
        "requests": total,
        "concurrency": concurrency,
        "accepted": len(accepted),
        "verified": len(verified),
        "delivered": len(set(verified) & delivered.keys()),
        "lost": len(set(verified) - delivered.keys()) + (total - len(accepted)) + (len(accepted) - len(verified)),
        "duplicated": (len(accepted) - len(set(accepted))) + sum(1 for ids in delivered.values() if len(ids) > 1),
        "server_errors": sum(n for status, n in statuses.items() if isinstance(status, int) and status >= 500),
        "retried": sum(n for status, n in statuses.items() if status in (503, "connection")),
        "submit": submit.summary(),
        "verify": verify.summary(),
        "drain_seconds": drain,
        "load_average": (load_before, os.getloadavg()[0]),
    }


# ------------------------------------------------------------------ the peer's shape
PEER_START, PEER_END = "<!-- load-peer:start -->", "<!-- load-peer:end -->"
# Measured by the author on this machine: Fides 2.78 with Postgres, Redis and a Celery worker.
FIDES = {
    "submit_1_p50": "62 ms",
    "submit_20": "29.9 req/s / 646 ms",
    "verify_1_p50": "39 ms",
    "verify_20": "42.2 req/s / 446 ms",
    "delivered": "107.5 s",
    "ready": "8–13 s (web) + 8.5 s (worker)",
    "memory": "13 always-on processes, 1.3 GB RSS",
}


def run_peer(
    base_url: str, alone: int = 200, together: int = 1000, clients: int = 20, wait_seconds: float = 900
) -> dict:
    """The load the peer was measured with: `alone` submissions from one client, then `together` from
    `clients` clients; each verified with its mailed code by as many clients as submitted it; then the
    time from the first of the many clients' verifications until every one of those requests reached
    the demo controller's webhook."""
    client = Client(base_url)
    run_id = uuid.uuid4().hex[:8]
    phases = {name: Phase() for name in ("submit_1", "submit_20", "verify_1", "verify_20")}

    load_before = os.getloadavg()[0]
    alone_ids = submit_all(client, phases["submit_1"], f"peer-{run_id}-alone", alone, 1)
    together_ids = submit_all(client, phases["submit_20"], f"peer-{run_id}-together", together, clients)
    codes = _codes(base_url, set(alone_ids + together_ids), timeout=wait_seconds)
    verified_alone = verify_all(client, phases["verify_1"], alone_ids, codes, 1)
    first_verification = time.perf_counter()
    verified_together = verify_all(client, phases["verify_20"], together_ids, codes, clients)
    delivered = _deliveries(base_url, set(verified_alone + verified_together), timeout=wait_seconds)
    together_delivered = set(verified_together) & delivered.keys()
    all_delivered_seconds = time.perf_counter() - first_verification
    accepted, verified = alone_ids + together_ids, verified_alone + verified_together
    statuses = sum((phase.statuses for phase in phases.values()), Counter())
    return {
        "alone": alone,
        "together": together,
        "clients": clients,
        **{name: phase.summary() for name, phase in phases.items()},
        "accepted": len(accepted),
        "verified": len(verified),
        "delivered": len(set(verified) & delivered.keys()),
        "together_delivered": len(together_delivered),
        "delivered_seconds": all_delivered_seconds,
        "lost": (alone + together - len(accepted))
        + (len(accepted) - len(verified))
        + len(set(verified) - delivered.keys()),
        "duplicated": (len(accepted) - len(set(accepted))) + sum(1 for ids in delivered.values() if len(ids) > 1),
        "server_errors": sum(n for status, n in statuses.items() if isinstance(status, int) and status >= 500),
        "retried": sum(n for status, n in statuses.items() if status in (503, "connection")),
        "load_average": (load_before, os.getloadavg()[0]),
    }


def peer_section(result: dict, ready_seconds: float, memory: tuple[float, float, int]) -> str:
    def rate(p: dict) -> str:
        return f"{p['per_second']:.1f} req/s / {p['p50_ms']:,.0f} ms"

    ours = {
        "submit_1_p50": f"{result['submit_1']['p50_ms']:.0f} ms",
        "submit_20": rate(result["submit_20"]),
        "verify_1_p50": f"{result['verify_1']['p50_ms']:.0f} ms",
        "verify_20": rate(result["verify_20"]),
        "delivered": f"{result['delivered_seconds']:.1f} s",
        "ready": f"{ready_seconds:.1f} s",
        "memory": f"{memory[2]} processes, {memory[0]:,.0f} MB PSS ({memory[1]:,.0f} MB RSS summed)",
    }
    labels = {
        "submit_1_p50": "submit, 1 client: p50",
        "submit_20": f"submit, {result['clients']} clients: throughput / p50",
        "verify_1_p50": "verify, 1 client: p50",
        "verify_20": f"verify, {result['clients']} clients: throughput / p50",
        "delivered": f"{result['together']:,} verified requests until all delivered",
        "ready": "start to ready",
        "memory": "memory at the end of the run",
    }
    rows = "\n".join(f"| {labels[key]} | {FIDES[key]} | {ours[key]} |" for key in labels)
    return f"""{PEER_START}
## Side by side with the peer (`make load SHAPE=peer`)

The load the best-known open-source alternative (Fides 2.78, with Postgres, Redis and a Celery
worker) was measured with on this same 2-core machine: {result["alone"]} submissions from one client,
then {result["together"]:,} from {result["clients"]} clients; each verified with its mailed code by as
many clients; then the time from the first of the {result["clients"]} clients' verifications until every
one of those requests reached the demo controller's webhook. rightsdesk runs as `make run` does
(`python -m local --background-priority idle`: the queue and stream consumers use only the CPU the
API leaves, as Lambda's capacity of their own would; local/README.md, "Callers first"), with the
abuse limits raised through parameter overrides because every client
is 127.0.0.1 (local/loopback.py); their production defaults are unchanged. The Fides column is the
issue's measurement (Fides cannot run here: no Docker); ours is this run's. Load average (1 minute)
{result["load_average"][0]:.1f} at the start, {result["load_average"][1]:.1f} at the end.

| measure (same machine, same load) | Fides | rightsdesk |
|---|---|---|
{rows}

| lost | duplicated | 5xx | retried (503 or refused) | accepted | verified | delivered |
|---|---|---|---|---|---|---|
| {result["lost"]} | {result["duplicated"]} | {result["server_errors"]} | {result["retried"]} | {result["accepted"]} | {result["verified"]} | {result["delivered"]} |
{PEER_END}"""


def tree_memory_megabytes(root: int) -> tuple[float, float, int]:
    """Memory of `root` and its descendants, read from /proc: proportional set size and resident set
    size (MB), and how many processes."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent == frontier[-1]]
        frontier.pop()
        tree.update(children)
        frontier.extend(children)
    pss = sum(_pss_kilobytes(pid) for pid in tree)
    rss = sum(_rss_kilobytes(pid) for pid in tree)
    return pss / 1e3, rss / 1e3, len(tree)


def _pss_kilobytes(pid: int) -> int:
    """Proportional set size: a page shared by n processes counts 1/n in each. Containers are forked
    from one preloaded process and share most of their pages; adding their RSS would count those
    pages once per container."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return _rss_kilobytes(pid)


def _rss_kilobytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, IndexError, ValueError):
        return 0


# ------------------------------------------------------------------ a local run of its own


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalRun:
    """`python -m local` on free ports, without schedules, until the `with` block ends."""

    def __enter__(self) -> str:
        ports = [_free_port() for _ in range(3)]
        self.log = open(ROOT / ".local" / "load-run.log", "w") if (ROOT / ".local").is_dir() else subprocess.DEVNULL
        self.ready_seconds = 0.0
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local",
                "--port",
                str(ports[0]),
                "--moto-port",
                str(ports[1]),
                "--receiver-port",
                str(ports[2]),
                "--no-schedules",
                "--background-priority",
                "idle",  # as `make run`: consumers use the CPU the API leaves (local/zygote.py)
                *loopback.parameter_overrides(),
            ],  # every client is 127.0.0.1: see local/loopback.py
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        base_url = f"http://127.0.0.1:{ports[0]}"
        started = time.monotonic()
        deadline = started + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(base_url + "/_dev/health", timeout=1).status_code == 200:
                    self.ready_seconds = time.monotonic() - started
                    return base_url
            except requests.RequestException:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("the local run did not start")

    def memory_megabytes(self) -> tuple[float, float, int]:
        """Memory of the run and every process it started (moto, containers), and how many."""
        return tree_memory_megabytes(self.process.pid)

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if self.log is not subprocess.DEVNULL:
            self.log.close()


def section(result: dict) -> str:
    rows = [
        f"| {name} | {p['n']} | {p['per_second']:.1f} | {p['p50_ms']:.0f} | {p['p99_ms']:.0f} |"
        for name, p in (("submit", result["submit"]), ("verify", result["verify"]))
    ]
    return f"""{START}
## Load without loss (`make load`)

{result["requests"]} submissions and their verifications from {result["concurrency"]} concurrent clients
(threads, keep-alive HTTP) against `python -m local` on loopback; then every verified request followed
to the demo controller's webhook. This machine's load average (1 minute) was {result["load_average"][0]:.1f}
at the start and {result["load_average"][1]:.1f} at the end (other work shares its 2 cores).

| lost | duplicated | 5xx | retried (503 or refused) | accepted | verified | delivered | drain after the last verify |
|---|---|---|---|---|---|---|---|
| {result["lost"]} | {result["duplicated"]} | {result["server_errors"]} | {result["retried"]} | {result["accepted"]} | {result["verified"]} | {result["delivered"]} | {result["drain_seconds"]:.0f} s |

| phase | answers | per second | p50 (ms) | p99 (ms) |
|---|---|---|---|---|
{chr(10).join(rows)}

The local runner invokes each function in a bounded pool of container processes (local/README.md:
`--max-containers`, 4 by default, or the function's reserved concurrency), so the clients share
this machine's two cores with moto's process and the runner; the latencies include waiting for a
free container. The queue and stream consumers run at idle CPU priority, as in `make run`: while the
clients keep the API busy they mostly wait, and the drain after the last verification is their
catching up. On AWS, API Gateway throttling (ApiThrottleRateLimit) and Lambda concurrency decide
instead.
{END}"""


def write_section(markdown: str, start: str = START, end: str = END) -> None:
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    if start in text and end in text:
        text = text[: text.index(start)] + markdown + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + markdown + "\n"
    REPORT.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--base-url", help="a running local stack (default: start one)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument(
        "--shape",
        choices=("even", "peer"),
        default="even",
        help="even: --requests from --concurrency clients; peer: the load the peer was measured with",
    )
    parser.add_argument("--alone", type=int, default=200, help="peer shape: submissions from one client")
    parser.add_argument("--together", type=int, default=1000, help="peer shape: submissions from --concurrency clients")
    args = parser.parse_args(argv)
    if args.shape == "peer":
        return _main_peer(args)
    if args.base_url:
        result = run(args.base_url, args.requests, args.concurrency)
    else:
        with LocalRun() as base_url:
            result = run(base_url, args.requests, args.concurrency)
    markdown = section(result)
    print(markdown)
    if not args.no_write:
        write_section(markdown)
    ok = result["lost"] == result["duplicated"] == result["server_errors"] == 0
    return 0 if ok else 1


def _main_peer(args: argparse.Namespace) -> int:
    run = LocalRun()
    with run as base_url:
        result = run_peer(base_url, args.alone, args.together, args.concurrency)
        memory = run.memory_megabytes()
    markdown = peer_section(result, run.ready_seconds, memory)
    print(markdown)
    if not args.no_write:
        write_section(markdown, PEER_START, PEER_END)
    return 0 if result["lost"] == result["duplicated"] == result["server_errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
