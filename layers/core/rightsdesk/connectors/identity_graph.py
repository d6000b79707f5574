"""The identity graph: from the verified email to every identity the connectors need, in order.

Each definition declares the identity kinds it `needs` and those it `yields` (Cognito: email ->
`cognito_sub`, `user_id`; a Users table: `user_id` -> `account_id`). `order` turns those
declarations into stages: a connector runs after every connector that yields a kind it needs
(unless the kind is a seed, such as the email), and connectors in one stage are independent of
each other, so an orchestrator may run a stage in parallel. A need no connector yields, a cycle
or a duplicate id is a DefinitionError, raised when the definitions are checked, before any run;
a tenant-scoped connector's need nobody yields is not one: the controller that asks for a processor
run gives it (rightsdesk.routing.controller_execution), and a run without it finds nothing there.

`resolve` runs the finds stage by stage and collects the identities they yield. Two values for
one kind (two users for one email, or a yield that contradicts a seed) make the subject
ambiguous: the run stops and nothing is erased. A connector whose need is not found (no Cognito
user, so no sub) has nothing of the subject's; one whose need would have come from a connector
that failed cannot know, and fails too (`identity_unavailable`).

`carry_out` is the whole run in one process (the orchestration's steps call the same pieces):
resolve, then plan (dry) or erase and verify each connector in REVERSE order, dependents first,
so that a run interrupted half-way can still derive, on resume, the identities the remaining
connectors need (the Cognito user that yields the sub goes last).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rightsdesk.connectors import base
from rightsdesk.connectors.base import Connector, Found, Identities, Outcome
from rightsdesk.connectors.definitions import DefinitionError
from rightsdesk.kernel import clock

# The verified email, and the tenant id a processor run passes to tenant-scoped connectors.
SEEDS = frozenset({"email", "tenant_id"})


@dataclass(frozen=True)
class Plan:
    """Connector ids in stages: every stage depends only on earlier ones."""

    stages: tuple[tuple[str, ...], ...]

    @property
    def order(self) -> list[str]:
        return [connector_id for stage in self.stages for connector_id in stage]


def order(definitions: Iterable[Any], seeds: Iterable[str] = SEEDS) -> Plan:
    """The stages `definitions` run in, starting from the identity kinds in `seeds`."""
    definitions = list(definitions)
    seeds = frozenset(seeds)
    ids = [definition.id for definition in definitions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DefinitionError("two connectors share an id", fields={"id": ", ".join(duplicates)})
    yielders: dict[str, set[str]] = {}
    for definition in definitions:
        for kind in definition.yields:
            yielders.setdefault(kind, set()).add(definition.id)
    problems: dict[str, str] = {}
    depends: dict[str, set[str]] = {}
    for definition in definitions:
        depends[definition.id] = set()
        for need in sorted(definition.needs):
            if need in seeds:
                continue
            if not yielders.get(need):
                if getattr(definition, "tenant_scoped", False):
                    continue  # a controller gives it: a processor run's identities are its seeds
                problems[f"{definition.id}.needs"] = f"no connector yields {need}"
            depends[definition.id] |= yielders.get(need, set())
    if problems:
        raise DefinitionError("a connector needs an identity no other connector yields", fields=problems)
    stages: list[tuple[str, ...]] = []
    placed: set[str] = set()
    while len(placed) < len(depends):
        ready = sorted(i for i, needs in depends.items() if i not in placed and needs <= placed)
        if not ready:
            raise DefinitionError(
                "the connectors' needs and yields form a cycle",
                fields={"cycle": " -> ".join(_cycle(depends, placed))},
            )
        stages.append(tuple(ready))
        placed |= set(ready)
    return Plan(tuple(stages))


def _cycle(depends: Mapping[str, set[str]], placed: set[str]) -> list[str]:
    """One cycle among the connectors not placed, for the error message (ids only)."""
    start = min(i for i in depends if i not in placed)
    path = [start]
    while True:
        step = min(i for i in depends[path[-1]] if i not in placed)
        if step in path:
            return path[path.index(step) :] + [step]
        path.append(step)


@dataclass
class Resolution:
    """What the finds established. `identities` holds values in the clear: it lives in memory for
    the run only and is never stored (outcomes hold keyed hashes)."""

    plan: Plan
    identities: dict[str, str]
    found: dict[str, Found] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    ambiguous: list[str] = field(default_factory=list)

    @property
    def parked(self) -> bool:
        return bool(self.ambiguous)


def _skipped(connector: Connector, result: str, failure: str | None = None) -> Outcome:
    started = clock.isoformat(clock.now())
    return Outcome(
        connector_id=connector.id,
        kind=connector.kind,
        role_arn=getattr(connector.definition, "role_arn", None),
        action="find",
        result=result,
        started_at=started,
        finished_at=started,
        failure={"code": failure} if failure else None,
    )


def resolve(connectors: Sequence[Connector], seeds: Identities) -> Resolution:
    """Run every connector's find in stage order and gather the identities they yield."""
    by_id = {connector.id: connector for connector in connectors}
    plan = order((connector.definition for connector in connectors), seeds.keys())
    resolution = Resolution(plan, dict(seeds))
    unavailable: set[str] = set()  # kinds a failed connector would have yielded
    for stage in plan.stages:
        gathered: dict[str, list[str]] = {}
        for connector_id in stage:
            connector = by_id[connector_id]
            if connector.needs & unavailable - resolution.identities.keys():
                resolution.outcomes[connector_id] = _skipped(connector, base.FAILED, "identity_unavailable")
                unavailable |= set(connector.yields)
                continue
            if not connector.needs <= resolution.identities.keys():
                resolution.outcomes[connector_id] = _skipped(connector, base.NOTHING_FOUND)
                continue
            outcome, found = base.plan(
                connector, {kind: resolution.identities[kind] for kind in sorted(connector.needs)}
            )
            resolution.outcomes[connector_id] = outcome
            if found is None:
                unavailable |= set(connector.yields)
                continue
            resolution.found[connector_id] = found
            for kind, values in found.derived.items():
                gathered.setdefault(kind, []).extend(values)
        for kind, candidates in sorted(gathered.items()):
            distinct = set(candidates) | ({resolution.identities[kind]} if kind in resolution.identities else set())
            if len(distinct) > 1:
                resolution.ambiguous.append(kind)
            else:
                resolution.identities[kind] = candidates[0]
        if resolution.ambiguous:
            for outcome in resolution.outcomes.values():
                if outcome.result != base.FAILED:
                    outcome.result = base.PARKED_AMBIGUOUS
            return resolution
    return resolution


def carry_out(
    connectors: Sequence[Connector], seeds: Identities, *, dry_run: bool = False
) -> tuple[Resolution, list[Outcome]]:
    """Resolve the identities, then plan (dry run) or erase and verify connector by connector.

    Ambiguous: the finds' outcomes, parked, and nothing erased. Otherwise one outcome per
    connector, in the order they ran (erasure: reverse stage order)."""
    resolution = resolve(connectors, seeds)
    if resolution.parked or dry_run:
        return resolution, [resolution.outcomes[i] for i in resolution.plan.order if i in resolution.outcomes]
    by_id = {connector.id: connector for connector in connectors}
    outcomes = []
    for connector_id in reversed(resolution.plan.order):
        connector = by_id[connector_id]
        found = resolution.found.get(connector_id)
        if found is None:  # nothing to act on (a need not found) or the find failed
            outcomes.append(resolution.outcomes[connector_id])
            continue
        identities = {kind: resolution.identities[kind] for kind in sorted(connector.needs)}
        outcomes.append(base.erase_and_verify(connector, identities, found))
    return resolution, outcomes
