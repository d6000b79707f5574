"""CPU per verified request, by process: what a verification costs end to end on a shared machine.

Wall-clock latency on a machine other work shares says little about a change; CPU time does. This
starts `python -m local` (as `make load` does), submits N requests, then verifies them from one
client and waits until every one reached the demo controller's webhook and got its confirmation
mail. The CPU time (user + system, from /proc) each process spent from the first verification to
the last delivery, less what the same processes spend idle (pollers) over as long, divided by N,
is reported per kind of process: moto (what its calls cost the emulator), the containers (the
handlers: the verification, the dispatcher's delivery, the notifier's mail) and the runner.

    .venv/bin/python -m bench.verify_cpu [-n 150] [--runs 3]

Compare two versions of the code in the same conditions (A/B, several runs, medians); not part of
`make bench`.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from pathlib import Path

import requests

from bench.load import Client, LocalRun, Phase, _codes, _deliveries, submit_all, verify_all

TICK = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _kind(pid: int, root: int) -> str:
    if pid == root:
        return "runner"
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    if "moto" in command:
        return "moto"
    if "local.zygote" in command:
        # A container renamed itself after its function (local/zygote.py); the fork server did not.
        name = Path(f"/proc/{pid}/comm").read_text().strip()
        return "containers" if name.startswith("python") else f"containers:{name}"
    return "containers"


def snapshot(root: int) -> dict[int, tuple[str, float]]:
    """pid -> (kind, CPU seconds) for `root` and every descendant."""
    tree, found, todo = _children(), {}, [root]
    while todo:
        pid = todo.pop()
        try:
            found[pid] = (_kind(pid, root), _cpu_seconds(pid))
        except OSError:
            continue
        todo.extend(tree.get(pid, []))
    return found


def spent(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds by kind; every function's containers count towards "containers" and also
    under "containers:<function>"."""
    by_kind: dict[str, float] = {"moto": 0.0, "containers": 0.0, "runner": 0.0}
    for pid, (kind, seconds) in after.items():
        used = seconds - (before[pid][1] if pid in before else 0.0)
        if kind.startswith("containers:"):
            by_kind[kind] = by_kind.get(kind, 0.0) + used
            kind = "containers"
        by_kind[kind] += used
    return by_kind


def _confirmed(base_url: str, wanted: set[str], timeout: float) -> None:
    """Until every request in `wanted` got its confirmation mail (the one with its status link)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mails = requests.get(base_url + "/_dev/outbox", timeout=60).json()
        if wanted <= {found for mail in mails for found in re.findall(r"/status/(dsr_\w+)", mail.get("text") or "")}:
            return
        time.sleep(0.5)
    raise RuntimeError("not every confirmation mail was sent")


def one_run(count: int, clients: int) -> dict:
    run = LocalRun()
    with run as base_url:
        pid = run.process.pid
        client = Client(base_url)
        # Warm every function's containers (clients, caches, the hash key), as a running stack's are.
        warm = submit_all(client, Phase(), f"cpu-warm-{time.time_ns()}", 10, 1)
        warm_codes = _codes(base_url, set(warm), timeout=120)
        verify_all(client, Phase(), warm, warm_codes, 1)
        _deliveries(base_url, set(warm), timeout=120)
        ids = submit_all(client, Phase(), f"cpu-{time.time_ns()}", count, 1)
        codes = _codes(base_url, set(ids), timeout=300)
        time.sleep(3)  # the warm-up's confirmation mails and the codes' mails settle

        idle_before, idle_started = snapshot(pid), time.perf_counter()
        time.sleep(5)
        idle = spent(idle_before, snapshot(pid))
        idle_seconds = time.perf_counter() - idle_started

        before, started = snapshot(pid), time.perf_counter()
        phase = Phase()
        verified = verify_all(client, phase, ids, codes, clients)
        delivered = _deliveries(base_url, set(verified), timeout=600)
        _confirmed(base_url, set(verified), timeout=600)
        after, elapsed = snapshot(pid), time.perf_counter() - started
        assert set(verified) <= delivered.keys() and len(verified) == count, "not every request was delivered"
        raw = spent(before, after)
        per_request = {
            kind: max(0.0, raw[kind] - idle.get(kind, 0.0) * elapsed / idle_seconds) * 1000 / count for kind in raw
        }
        return {
            **per_request,
            "total": per_request["moto"] + per_request["containers"] + per_request["runner"],
            "verify_p50": phase.summary()["p50_ms"],
            "seconds": elapsed,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=150, help="verifications measured per run")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    results = []
    for run in range(args.runs):
        result = one_run(args.n, args.clients)
        results.append(result)
        print(
            f"run {run + 1}: CPU ms per verified request: moto {result['moto']:.1f}, containers "
            f"{result['containers']:.1f}, runner {result['runner']:.1f}, total {result['total']:.1f}; "
            f"verify p50 {result['verify_p50']:.1f} ms; {result['seconds']:.1f} s",
            flush=True,
        )
        functions = sorted((k for k in result if k.startswith("containers:")), key=lambda k: -result[k])
        print("  by function: " + ", ".join(f"{k.split(':', 1)[1]} {result[k]:.1f}" for k in functions), flush=True)
    medians = {kind: statistics.median(r[kind] for r in results) for kind in results[0]}
    print(
        f"median of {args.runs}: moto {medians['moto']:.1f}, containers {medians['containers']:.1f}, runner "
        f"{medians['runner']:.1f}, total {medians['total']:.1f} ms CPU per verified request; "
        f"verify p50 {medians['verify_p50']:.1f} ms (wall, shared machine)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
