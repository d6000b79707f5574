"""Breach notices per second through MailQueue -> NotifierFunction -> SES (moto), SES calls per
recipient, and the notifier's peak memory.

Three kinds of process, so each figure is the notifier's own: this one runs moto in server mode,
seeds controllers and subjects and declares breaches through the core (their notices are queued:
the fan-out rate); a worker (bench/notifier_worker.py) plays Lambda's SQS poller around the real
NotifierFunction handler until every notice has its outcome, counting the handler's AWS calls with a
botocore hook. Recipients go in waves of WAVE (one breach each, the next declared when the last has
its outcome): moto's SQS recounts the whole queue on every send and receive, so one 10k-deep queue
would measure the emulator's O(n^2), not rightsdesk. Throughput is measured untraced (tracemalloc
slows Python about twofold); memory comes from a second, traced worker over two waves, whose peaks
show whether it grows with the mails handled.

`python -m bench.notices N` prints the result as JSON on its last line.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGION = "eu-central-1"
SENDER = "privacy@example.com"
HASH_KEY = "bench-hash-key"
WAVE = 500
MEMORY_WAVE = 200


def _note(text: str) -> None:
    print(f"bench.notices: {text}", file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(endpoint: str, tables: dict[str, str], queues: dict[str, str]) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "RIGHTSDESK_TABLE": tables["RightsTable"],
        "IDEMPOTENCY_TABLE": tables["IdempotencyTable"],
        "MAIL_QUEUE_URL": queues["MailQueue"],
        "DELIVERY_QUEUE_URL": queues["DeliveryQueue"],
        "RIGHTSDESK_HASH_KEY": HASH_KEY,
        "MAIL_FROM": SENDER,
        "PUBLIC_BASE_URL": "https://rights.test",
        "POWERTOOLS_METRICS_NAMESPACE": "rightsdesk",
        "POWERTOOLS_SERVICE_NAME": "notifier",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "SES_MAX_SEND_RATE": "0",
    }


def _seed(count: int, controller_id: str) -> None:
    from rightsdesk.kernel import clock
    from rightsdesk.store.items.controllers import ControllerItem
    from rightsdesk.store.items.requests import RequestItem
    from rightsdesk.store.lifecycle import listing_key

    now = clock.now()
    ControllerItem(
        ControllerItem.key(controller_id),
        ControllerItem.SK,
        controller_id=controller_id,
        name="Bench",
        site_key=controller_id.replace("_", "-"),
        contact_email=f"dpo@{controller_id}.test",
        delivery="email",
        created_at=now,
        gsi1pk="CONTROLLERS",
        gsi1sk=controller_id,
    ).save()
    with RequestItem.batch_write() as batch:
        for n in range(count):
            email = f"bench-{controller_id}-{n}@example.org"
            created = now - timedelta(minutes=n)
            batch.save(
                RequestItem(
                    RequestItem.key(f"dsr_{controller_id}_{n}"),
                    RequestItem.SK,
                    request_id=f"dsr_{controller_id}_{n}",
                    controller_id=controller_id,
                    site=controller_id,
                    request_type="access",
                    status="forwarded",
                    locale=("en", "de", "sl")[n % 3],
                    email=email,
                    subject_hash=hashlib.sha256(email.encode()).hexdigest(),
                    created_at=created,
                    gsi1pk=f"CTRL#{controller_id}",
                    gsi1sk=listing_key("forwarded", created, f"dsr_{controller_id}_{n}"),
                )
            )


def _declare(controller_id: str) -> tuple[str, float, int]:
    from rightsdesk.kernel import clock
    from rightsdesk.notices import breaches

    started = time.perf_counter()
    incident = breaches.declare(
        breaches.Declaration(
            detected_at=clock.now() - timedelta(hours=1),
            summary="Benchmark breach.",
            categories=["chat_history"],
            contact="dpo@rights.test",
            controller_ids=[controller_id],
            high_risk=True,
            notify_subjects=True,
        )
    )
    return incident.incident_id, time.perf_counter() - started, sum(breaches.tally(incident)["total"].values())


class _Worker:
    """A notifier worker process, driven one wave at a time over its stdin and stdout."""

    def __init__(self, env: dict[str, str], *, trace: bool):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.notifier_worker", *(["--trace-memory"] if trace else [])],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def wave(self, incident_id: str) -> dict:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(f"wave {incident_id}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the notifier worker stopped (exit {self.process.wait()})")
        return json.loads(answer)

    def quit(self) -> None:
        assert self.process.stdin
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(timeout=60)


def _waves(count: int, size: int) -> list[int]:
    return [size] * (count // size) + ([count % size] if count % size else [])


def run(count: int, wave: int = WAVE) -> dict:
    """Everything in this process and its workers; returns the figures."""
    sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "core")]
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # an access line per moto call otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import boto3

        from tests.support.aws import create_queues_from_template, create_tables_from_template

        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
        )
        session = boto3.Session(region_name=REGION)
        tables = create_tables_from_template(session, "bench")
        queues = create_queues_from_template(session, "bench")
        session.client("ses").verify_email_identity(EmailAddress=SENDER)
        env = _environment(endpoint, tables, queues)
        os.environ.update(env)
        from rightsdesk.platform import config
        from rightsdesk.store.items.table import bind_table

        config.reload()
        bind_table(tables["RightsTable"])

        recipients, declare_seconds, send_seconds, calls = 0, 0.0, 0.0, Counter()
        speed = _Worker(env, trace=False)
        for number, size in enumerate(_waves(count, wave)):
            controller_id = f"ctl_speed{number}"
            _seed(size, controller_id)
            incident_id, seconds, notices = _declare(controller_id)
            result = speed.wave(incident_id)
            recipients += notices
            declare_seconds += seconds
            send_seconds += result["seconds"]
            calls.update(result["calls"])
            _note(
                f"wave {number + 1}: {notices} notices declared in {seconds:.0f} s, sent in {result['seconds']:.0f} s"
            )
        speed.quit()

        traced = _Worker(env, trace=True)
        memory = []
        for number in range(2):
            _seed(MEMORY_WAVE, f"ctl_memory{number}")
            incident_id, _, _ = _declare(f"ctl_memory{number}")
            memory.append(traced.wave(incident_id))
        traced.quit()
    finally:
        server.stop()
    return {
        "recipients": recipients,
        "wave": wave,
        "declare_seconds": declare_seconds,
        "declare_per_second": recipients / declare_seconds,
        "send_seconds": send_seconds,
        "notices_per_second": recipients / send_seconds,
        "ses_calls_per_recipient": calls.get("ses", 0) / recipients,
        "dynamodb_calls_per_recipient": calls.get("dynamodb", 0) / recipients,
        "imported_memory_mib": memory[0]["imported_bytes"] / 2**20,
        "peak_memory_first_wave_mib": memory[0]["peak_bytes"] / 2**20,
        "peak_memory_mib": memory[1]["peak_bytes"] / 2**20,
        "traced_recipients": memory[1]["handled"],
    }


def section(result: dict, ten_k: dict | None = None) -> str:
    """The benchmarks.md section; `ten_k` is the opt-in 10k run when it was made."""

    def row(r: dict) -> str:
        return (
            f"| {r['recipients']:,} | {r['declare_per_second']:.0f} | {r['notices_per_second']:.1f} | "
            f"{r['ses_calls_per_recipient']:.2f} | {r['dynamodb_calls_per_recipient']:.2f} | "
            f"{r['peak_memory_mib']:.1f} ({r['imported_memory_mib']:.1f} after import, "
            f"{r['peak_memory_first_wave_mib']:.1f} after the first half of {r['traced_recipients']:,}) |"
        )

    rows = [row(result)] + ([row(ten_k)] if ten_k else [])
    return f"""
## Breach notices: MailQueue -> NotifierFunction -> SES (moto)

Breaches of 500 subjects each (moto's SQS recounts its whole queue on every call, so one very deep
queue would measure the emulator); `breaches.declare` writes the notices and queues their mails
(fan-out rate), then the real NotifierFunction handler, fed by a stand-in for Lambda's SQS poller in
a process of its own, sends every one and records its outcome. Calls are counted with a botocore hook in the
notifier's process: SES and DynamoDB are the notifier's (idempotency record put and update, the
batch's suppression lookup, the notice's outcome); SQS receive and delete are Lambda's and not
counted. Peak memory is tracemalloc's in a second, traced run of two waves; the peak after the first
shows it does not grow with the mails handled. Unpaced (`SES_MAX_SEND_RATE=0`): in AWS the rate is
capped by the SesMaxSendRate parameter (docs/notices.md). moto answers over loopback on the same two
cores: the figures compare versions of this code, not what SES and DynamoDB would do.

| recipients | fan-out (notices/s) | sent (notices/s) | SES calls / recipient | DynamoDB calls / recipient | notifier peak memory (MiB) |
|---|---|---|---|---|---|
{chr(10).join(rows)}

{"" if ten_k else "The 10k run is opt-in (`python -m bench --notices-10k`); its last result is in docs/notices.md."}
"""


def run_isolated(count: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.notices", str(count)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=4 * 3600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"notices bench failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    figures = run(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
    sys.stdout.write("\n" + json.dumps(figures) + "\n")
