"""Every retention period is a rule of rightsdesk.kernel.retention: no module of the core or of a
handler builds a period of days (a timedelta of days or weeks, or a product of constants that makes
whole days, such as `7 * 24 * 3600`) except the durations allowed below, none of them retention."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rightsdesk.kernel import retention

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "layers" / "core" / "rightsdesk"
SEARCHED = [*CORE.rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
TABLE = CORE / "kernel" / "retention.py"
DAY = 86400

# (module, enclosing function or "<module>"): why that day-sized duration is not a retention period.
NOT_RETENTION = {
    ("layers/core/rightsdesk/kernel/deadlines.py", "days_from"): "the legal deadline: a month or sla_days",
    ("layers/core/rightsdesk/notices/breaches.py", "recent"): "the breach watch's window: 72 h and a week",
    ("layers/core/rightsdesk/audience/unsubscribe.py", "issued_at"): "a token's issue day (days since 1970) as a date",
    ("layers/core/rightsdesk/routing/registry.py", "<module>"): "the bounds a per-controller purge-after must keep",
}


def _day_sized(node: ast.AST) -> bool:
    if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "timedelta":
        return any(keyword.arg in ("days", "weeks") for keyword in node.keywords) or bool(node.args)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        value = _product(node)
        return value is not None and value >= DAY and value % DAY == 0
    return False


def _product(node: ast.AST) -> int | None:
    """The value of a product of integer constants, else None."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        left, right = _product(node.left), _product(node.right)
        return left * right if left is not None and right is not None else None
    return None


def _findings(path: Path) -> list[tuple[str, str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    relative = path.relative_to(ROOT).as_posix()
    found = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = (
                child.name
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and scope == "<module>"
                else scope
            )
            if _day_sized(child):
                found.append((relative, inner, child.lineno))
                continue  # `7 * 24 * 3600` is one finding, not three
            visit(child, inner)

    visit(tree, "<module>")
    return found


def test_no_module_outside_the_table_builds_a_period_of_days():
    unexplained = [
        f"{module}:{line} (in {scope})"
        for path in SEARCHED
        if path != TABLE
        for module, scope, line in _findings(path)
        if (module, scope) not in NOT_RETENTION
    ]
    assert not unexplained, "a retention period belongs in rightsdesk.kernel.retention: " + ", ".join(unexplained)


def test_the_check_finds_a_period_where_there_is_one(tmp_path):
    """The positive control: both spellings of the handlers' old idempotency expiry are found."""
    sample = tmp_path / "sample.py"
    sample.write_text("from datetime import timedelta\nA = 7 * 24 * 3600\ndef f():\n    return timedelta(days=7)\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert [(scope, line) for _, scope, line in _findings(sample)] == [("<module>", 2), ("f", 4)]
    finally:
        ROOT = saved


def test_the_allowlist_names_no_module_that_has_nothing_to_allow():
    present = {(module, scope) for path in SEARCHED for module, scope, _ in _findings(path)}
    assert set(NOT_RETENTION) <= present, set(NOT_RETENTION) - present


@pytest.mark.parametrize(
    ("rule", "kept"),
    [
        (retention.Rule.EXPORT, 7 * DAY),
        (retention.Rule.SUBJECT_YEAR_COUNTER, 0),
        (retention.Rule.IDEMPOTENT_SUBMISSION, DAY),
        (retention.Rule.IDEMPOTENT_QUEUE_MESSAGE, 7 * DAY),
    ],
)
def test_the_periods_that_moved_into_the_table_kept_their_length(rule, kept):
    assert retention.keep_seconds(rule) == kept


def test_every_rule_says_what_happens_then():
    assert set(retention.DEFAULTS) == set(retention.Rule)
    assert all(entry.rule is name and entry.then in ("delete", "purge") for name, entry in retention.DEFAULTS.items())
