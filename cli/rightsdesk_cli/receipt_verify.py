"""Verify an exported erasure receipt offline, with the public key alone (docs/connectors.md, Receipts).

    python -m rightsdesk_cli.receipt_verify receipt.json --public-key key.pem [--json]

The key is the receipt signing key's public half, PEM or DER, as KMS GetPublicKey gives it (the
stack's ReceiptSigningKeyArn output names the key). Needs no AWS credentials and no rightsdesk
configuration: the checks are rightsdesk.connectors.receipts.verify.

Exit status: 0 every entry verified and the chain is sealed; 1 an entry failed (each failure is
named by its position and number); 2 the receipt or the key could not be read; 3 every entry
verified but the chain ends without a seal, so entries cut off its end cannot be ruled out.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rightsdesk.connectors import receipts

VERIFIED = 0
FAILED = 1
UNREADABLE = 2
NOT_SEALED = 3


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object with a key twice reads differently in different tools: refused."""
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"a JSON object names {sorted({k for k in keys if keys.count(k) > 1})} twice")
    return dict(pairs)


def _read(path: str) -> bytes:
    return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rightsdesk_cli.receipt_verify",
        description="Verify a rightsdesk erasure receipt offline with the signing key's public key.",
        epilog="Exit status: 0 verified and sealed, 1 an entry failed, 2 unreadable input, 3 verified but not sealed.",
    )
    parser.add_argument("receipt", help="the exported receipt (JSON); - reads standard input")
    parser.add_argument(
        "--public-key",
        required=True,
        action="append",
        help="the signing key's public key, PEM or DER; repeat for a chain that spans a replaced key",
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    args = parser.parse_args(argv)

    try:
        document = json.loads(_read(args.receipt).decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
        public_keys = [Path(path).read_bytes() for path in args.public_key]
        outcome = receipts.verify(document, public_keys)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        message = f"cannot read the receipt or the key: {error}"
        if args.json:
            print(json.dumps({"valid": False, "error": message}))
        else:
            print(message, file=sys.stderr)
        return UNREADABLE

    code = FAILED if not outcome.valid else VERIFIED if outcome.sealed else NOT_SEALED
    if args.json:
        print(json.dumps(outcome.as_dict(), indent=2))
        return code
    for problem in outcome.problems:
        where = "receipt" if problem.position == 0 else f"entry {problem.position} (seq {problem.seq})"
        print(f"FAILED {where}: {problem.code}: {problem.message}")
    if code == FAILED:
        first = outcome.problems[0]
        print(
            f"receipt of {outcome.request_id}: NOT verified ({len(outcome.problems)} problems, first at entry {first.position})"
        )
    elif code == NOT_SEALED:
        print(
            f"receipt of {outcome.request_id}: {outcome.entries} entries verified, but the chain is not sealed: "
            "entries removed from its end would not show"
        )
    else:
        print(f"receipt of {outcome.request_id}: {outcome.entries} entries verified, sealed; head {outcome.head}")
    return code


if __name__ == "__main__":
    sys.exit(main())
