"""A container's line to the runner (local/zygote.py Runner): a handler making two calls at once
(rightsdesk.platform.overlap) asks about faults from two threads, and each must get its own answer."""

from __future__ import annotations

import threading
from multiprocessing import Pipe

from local.zygote import Runner


def _runner_side(connection, questions: int) -> None:
    """Answers each question with the operation it asked about, as the runner answers in order."""
    import json

    for _ in range(questions):
        service, operation = json.loads(connection.recv_bytes())["fault"]
        connection.send_bytes(json.dumps({"rule": {"operation": operation}}).encode())


def test_two_threads_asking_at_once_each_get_the_answer_to_their_own_question():
    container_end, runner_end = Pipe()
    rounds = 300
    answering = threading.Thread(target=_runner_side, args=(runner_end, 2 * rounds), daemon=True)
    answering.start()
    runner = Runner(container_end)
    mixed_up: list[tuple[str, str]] = []

    def ask(operation: str) -> None:
        for _ in range(rounds):
            answer = runner.ask_fault("sqs", operation)
            if answer != {"operation": operation}:
                mixed_up.append((operation, str(answer)))

    threads = [threading.Thread(target=ask, args=(name,)) for name in ("SendMessage", "DeleteMessage")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    answering.join(timeout=30)
    assert not mixed_up, mixed_up[:3]
