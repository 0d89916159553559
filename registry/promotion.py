"""Release-manager jobs: register a folder, promote through the gate, roll back, read the history."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, cast

from embedops.core.errors import ConfigError, EmbedopsError
from embedops.core.names import parse_version, validate_name
from embedops.core.progress import phase
from embedops.core.runs import ensure_experiment
from embedops.core.settings import Settings
from evaluation.golden import load_golden_set
from registry import store
from registry.gate.decision import GateDecision, shadow_checks, with_checks
from registry.gate.policy import GatePolicy, ShadowPolicy
from registry.gate.report import DecisionRecord, render_html
from registry.index_moves import IndexRoots, describe, ensure, ledger_detail, needed_corpora
from registry.ledger import Ledger, Move, format_ts, rollback_target
from registry.moves import authorize, move_production, recorded, set_candidate
from registry.store import CANDIDATE, PREVIOUS, PRODUCTION, RegistryError

if TYPE_CHECKING:
    from indexing.manifest import IndexManifest
    from registry.gate.evidence import GateRun
    from registry.shadow import ShadowResult, Traffic

PROMOTIONS_EXPERIMENT = "promotions"


class GateRejected(EmbedopsError):
    """The candidate failed the gate; production is unchanged. Carries the decision for reports."""

    def __init__(self, message: str, payload: dict[str, Any]) -> None:
        super().__init__(message)
        self.payload = payload


@dataclass(frozen=True)
class MoveResult:
    """What ``promote`` did; ``to_dict`` is ``promote --json`` (and a rejection's payload)."""

    model: str
    version: str  # the version that was gated or moved
    previous_production: str | None
    moved: bool
    production: str | None  # production after the job
    decision_run_id: str | None = None
    decision: GateDecision | None = None
    candidate: str | None = None  # --gate-only: the version `candidate` now points at
    indexes: tuple[str, ...] = ()  # the version's index of each corpus production serves (index_moves.describe)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "previous_production": self.previous_production,
            "moved": self.moved,
            "production": self.production,
            # The gate's verdict under the key retrain and compare use too (None: no gate ran).
            "verdict": self.decision.verdict if self.decision else None,
            "decision_run_id": self.decision_run_id,
            "decision": self.decision.to_dict() if self.decision else None,
            "indexes": list(self.indexes),
        }
        if self.candidate is not None:
            out["candidate"] = self.candidate
        return out


@dataclass(frozen=True)
class RollbackResult:
    """What ``rollback`` did; ``to_dict`` is ``rollback --json``."""

    model: str
    production: str
    previous_production: str
    moved: bool = True
    indexes: tuple[str, ...] = ()  # the restored version's index of each corpus production served

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"indexes": list(self.indexes)}


@dataclass(frozen=True)
class HistoryResult:
    """A model's ledger rows, oldest first; with ``at``, which version production was then."""

    model: str
    moves: list[Move]
    at: dt.datetime | None = None
    production_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "moves": [m.to_dict() for m in self.moves]}
        if self.at is not None:
            out["at"] = self.at.isoformat()
            out["production_at"] = self.production_at
        return out


@dataclass(frozen=True)
class Context:
    """Where a job keeps state and who runs it."""

    ledger: Ledger
    actor: str
    artifact_root: str | None
    cache_dir: Path | None
    release_managers: list[str] = field(default_factory=list)
    # MLflow's grant to ``actor`` on a registered model, where the tracking server authenticates.
    grant_lookup: Callable[[str], str | None] | None = None
    # Where indexes and corpora live: a move of production moves the version's indexes with it.
    index_roots: IndexRoots | None = None
    # Reads the live queries a policy's `shadow:` block names (the traffic reader lives in monitoring/);
    # without one, a gate cannot run the shadow comparison and says so.
    read_traffic: Callable[[ShadowPolicy], Traffic] | None = None

    def may_move_production(self, name: str) -> None:
        grant = self.grant_lookup(name) if self.grant_lookup else None
        authorize(self.actor, self.release_managers, mlflow_grant=grant, model=name)


def open_context(
    settings: Settings, who: str | None, policy_managers: list[str], default_actor: str | None = None
) -> Context:
    """The context every command and the demo work in: the store's ledger, the actor the tracking
    server authenticated (else ``who``), and the grant lookup that authorizes moves."""
    from embedops.core.settings import release_managers
    from registry.access import model_grant, resolve_actor

    acting = resolve_actor(settings.tracking_uri, who, default_actor)
    return Context(
        ledger=Ledger(settings.ledger_url),
        actor=acting,
        artifact_root=settings.artifact_root,
        cache_dir=settings.cache_dir,
        release_managers=release_managers(policy_managers),
        grant_lookup=lambda name: model_grant(settings.tracking_uri, acting, name),
        index_roots=IndexRoots(settings.index_root, settings.corpus_root, settings.artifact_root),
    )


def log_decision(
    gate: GateRun, name: str, golden: str, split: str, artifact_root: str | None, record: DecisionRecord
) -> str:
    """One run in the ``promotions`` experiment with the decision as JSON and as an HTML report."""
    import mlflow

    decision = gate.decision
    experiment_id = ensure_experiment(PROMOTIONS_EXPERIMENT, artifact_root)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{name}-v{decision.candidate_version}") as run:
        mlflow.log_params(
            {
                "model": name,
                "candidate_version": decision.candidate_version,
                "production_version": decision.production_version,
                "golden": golden,
                "golden_split": split,
                "primary_metric": decision.primary_metric,
            }
        )
        mlflow.set_tags(
            {
                "verdict": decision.verdict,
                "golden_digest": decision.golden_digest,
                "reindex_required": str(decision.reindex_required).lower(),
                "actor": record.actor,
                "action": record.action,
                "reason": record.reason[:5000],
            }
        )
        metrics = {f"candidate_{k}": v for k, v in decision.candidate_metrics.items()}
        metrics |= {f"production_{k}": v for k, v in decision.production_metrics.items()}
        metrics |= {
            "p_value": decision.comparison["p_value"],
            "mean_difference": decision.comparison["mean_difference"],
        }
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "decision.json").write_text(json.dumps(decision.to_dict(), indent=2))
            (Path(tmp) / "report.html").write_text(
                render_html(
                    decision,
                    name,
                    golden=f"{golden} [{split}]",
                    run_id=run.info.run_id,
                    record=record,
                    changes=gate.changes,
                ),
                encoding="utf-8",
            )
            mlflow.log_artifacts(tmp, artifact_path="gate")
        return cast(str, run.info.run_id)  # RunInfo.run_id is unannotated in MLflow


def promote(
    ctx: Context,
    name: str,
    version: str,
    *,
    policy: GatePolicy,
    golden: str | None = None,
    golden_split: str | None = None,
    reason: str = "",
    initial: bool = False,
    skip_gate: bool = False,
    expected_production: str | None = None,
    gate_only: bool = False,
    allow_reindex: bool = False,
    build_index: bool = False,
    progress: bool = True,
    notify: Callable[[str], None] = lambda _: None,
) -> MoveResult:
    """Gate ``version`` against production and move the aliases; raises GateRejected on a failed gate.

    ``gate_only`` (what automation may do) points ``candidate`` at a version that passed and leaves
    production for a release manager. ``allow_reindex`` lets ``skip_gate`` move to a version whose
    vectors are not comparable with production's (another dimension, tokenizer or similarity).
    Production moves only with the version's own verified index of each corpus production serves
    (``index_moves``); ``build_index`` builds the missing ones once the gate passed. ``gate_only`` with
    ``build_index`` builds them too, so a candidate waits ready to serve.
    """
    candidate = store.get_version(name, resolve_alias(name, version))
    if not gate_only:
        ctx.may_move_production(name)
    current = (
        store.alias_version(name, PRODUCTION)
        if initial
        else store.production_version(name, " yet: the first promotion needs --initial")
    )
    if current == candidate.version:
        raise RegistryError(f"{name} v{candidate.version} is already production; nothing was moved")
    if current is not None and initial:
        raise RegistryError(f"{name} already has production v{current}: --initial is only for the first promotion")
    if skip_gate and not reason.strip():
        raise ConfigError("--skip-gate needs --reason (it is recorded in the ledger)")
    if gate_only and (skip_gate or current is None):
        raise ConfigError("--gate-only needs a production version to gate against and cannot skip the gate")
    expected = parse_version(expected_production) if expected_production is not None else current
    refusal = Refusal(action="promote", model=name, current=current, target=candidate.version, reason=reason)
    if skip_gate and current is not None and not allow_reindex:
        changed = contract_changes(store.get_version(name, current), candidate)
        if changed:
            with recorded_refusal(ctx, **refusal):
                raise ContractChangeError(
                    f"{name} v{candidate.version} changes the contract ({'; '.join(changed)}): "
                    "every index built by production must be rebuilt; pass --allow-reindex "
                    "to move anyway, or promote through the gate"
                )

    moves_indexes = not gate_only or build_index
    if moves_indexes and not build_index:  # refused before a gate that could not move anything anyway
        with recorded_refusal(ctx, **refusal):
            check_indexes(ctx, candidate, current, build=False)

    decision_run_id = None
    decision: GateDecision | None = None
    indexes: list[IndexManifest] = []
    if current is not None and not skip_gate:
        golden_dir, split = gate_golden_set(candidate, golden, golden_split, policy, notify)
        from registry.gate.evidence import run_gate  # loads torch: only when a gate actually runs

        golden_set = load_golden_set(golden_dir, split)
        with recorded_refusal(ctx, **refusal):
            gate = run_gate(
                candidate,
                store.get_version(name, current),
                golden_set,
                policy,
                cache_dir=ctx.cache_dir,
                progress=progress,
            )
        decision = gate.decision
        shadow_lines: tuple[str, ...] = ()
        if policy.shadow is not None:
            if build_index and moves_indexes:  # the candidate answers live queries with its own index
                with recorded_refusal(ctx, **refusal):
                    indexes = check_indexes(ctx, candidate, current, build=True)
            shadow, why = gate_shadow(ctx, name, candidate.version, current, policy.shadow)
            from registry.shadow import lines

            shadow_lines = lines(shadow) if shadow else (f"no shadow comparison: {why}",)
            decision = with_checks(decision, shadow_checks(policy.shadow, shadow.summary if shadow else None, why))
            gate = replace(gate, decision=decision)
        if decision.passed and moves_indexes:
            with recorded_refusal(ctx, **refusal):
                indexes = check_indexes(ctx, candidate, current, build=build_index)
        with phase("logging the decision and its HTML report to MLflow"):
            record = DecisionRecord(
                ctx.actor,
                format_ts(dt.datetime.now(dt.UTC)),
                reason,
                "gate" if gate_only else "promote",
                tuple(describe(m) for m in indexes),
                shadow_lines,
            )
            decision_run_id = log_decision(gate, name, golden_dir, split, ctx.artifact_root, record)
        store.tag_version(
            name,
            candidate.version,
            {
                "gate_verdict": decision.verdict,
                "gate_decision_run_id": decision_run_id,
                GATE_GOLDEN: golden_dir,
                GATE_GOLDEN_SPLIT: split,
            },
        )
        if not decision.passed:
            failed = ", ".join(c.name for c in decision.failed_checks)
            # A --gate-only run is a preview that could only have moved `candidate`: a gate row, not a
            # rejected production move.
            ctx.ledger.record(
                actor=ctx.actor,
                action="gate" if gate_only else "promote",
                model=name,
                alias=CANDIDATE if gate_only else PRODUCTION,
                from_version=store.alias_version(name, CANDIDATE) if gate_only else current,
                to_version=candidate.version,
                outcome="rejected",
                reason=reason,
                decision_run_id=decision_run_id,
                detail=f"failed: {failed}",
            )
            payload = MoveResult(name, candidate.version, current, False, current, decision_run_id, decision).to_dict()
            raise GateRejected(
                f"gate rejected {name} v{candidate.version} against production v{current} "
                f"(failed: {failed}); production is unchanged",
                payload,
            )
    else:
        check_files_or_record(ctx, candidate, action="promote", current=current, reason=reason)
        if moves_indexes:
            with recorded_refusal(ctx, **refusal):
                indexes = check_indexes(ctx, candidate, current, build=build_index)
    described = tuple(describe(m) for m in indexes)
    if gate_only:
        with ctx.ledger.mutex(name):
            set_candidate(
                ctx.ledger,
                name=name,
                version=candidate.version,
                actor=ctx.actor,
                reason=reason or "passed the gate",
                decision_run_id=decision_run_id,
                action="gate",
            )
        return MoveResult(
            name, candidate.version, current, False, current, decision_run_id, decision, candidate.version, described
        )
    why = reason or ("initial promotion" if initial else "passed the gate")
    if skip_gate:
        why = f"gate skipped: {reason}"
    move_production(
        ctx.ledger,
        name=name,
        to_version=candidate.version,
        expected=expected,
        actor=ctx.actor,
        action="promote",
        reason=why,
        decision_run_id=decision_run_id,
        detail=ledger_detail(indexes),
    )
    clear_candidate(ctx, name, candidate.version)
    return MoveResult(
        name, candidate.version, current, True, candidate.version, decision_run_id, decision, indexes=described
    )


def gate_shadow(
    ctx: Context, name: str, candidate: str, current: str, policy: ShadowPolicy
) -> tuple[ShadowResult | None, str]:
    """The shadow comparison the policy asks for, or None and why it could not run."""
    if ctx.index_roots is None or ctx.read_traffic is None:
        return None, "this job has no traffic reader (run the gate through `embedops promote`)"
    corpus = policy.corpus or next(iter(needed_corpora(ctx.index_roots, name, current)), None)
    if corpus is None:
        return None, "production serves no corpus, so there is nothing to search"
    from embedops.core.errors import DataError, VectorIndexError
    from registry.shadow import run_shadow

    try:
        return run_shadow(ctx.index_roots, name, candidate, corpus, ctx.read_traffic(policy)), ""
    except (DataError, VectorIndexError) as exc:
        return None, str(exc)


def check_indexes(ctx: Context, target: store.VersionInfo, current: str | None, *, build: bool) -> list[IndexManifest]:
    """``target``'s verified index of each corpus production serves (see ``index_moves.ensure``)."""
    if ctx.index_roots is None or current is None:
        return []
    from registry.verified import load_version

    return ensure(ctx.index_roots, target, current, build=build, load=load_version)


# Version tags: the golden set and split a version was gated on, which a later promote reuses.
GATE_GOLDEN, GATE_GOLDEN_SPLIT = "gate_golden", "gate_golden_split"


def gate_golden_set(
    candidate: store.VersionInfo,
    golden: str | None,
    split: str | None,
    policy: GatePolicy,
    notify: Callable[[str], None],
) -> tuple[str, str]:
    """The golden set a gate runs on: --golden, else the policy's, else the one the candidate was
    last gated on (so a release manager promotes without the data scientist's paths)."""
    if golden or policy.golden:
        return str(golden or policy.golden), split or policy.golden_split
    recorded = candidate.tags.get(GATE_GOLDEN)
    if not recorded:
        raise ConfigError(
            f"the gate needs a golden set and v{candidate.version} was never gated: pass --golden DIR "
            "or set golden: in the policy file"
        )
    split = split or candidate.tags.get(GATE_GOLDEN_SPLIT) or policy.golden_split
    notify(f"golden    {recorded} [{split}]: the set v{candidate.version} was gated on (--golden to use another)")
    return recorded, split


def clear_candidate(ctx: Context, name: str, promoted: str) -> None:
    """A candidate that reached production is no longer a candidate: the alias goes, on record."""
    with ctx.ledger.mutex(name):
        if store.alias_version(name, CANDIDATE) != promoted:
            return
        row = dict(
            actor=ctx.actor,
            action="promote",
            model=name,
            alias=CANDIDATE,
            from_version=promoted,
            to_version=None,
            reason=f"v{promoted} is production now",
            decision_run_id=None,
        )
        with recorded(ctx.ledger, row):
            store.delete_alias(name, CANDIDATE)


class ContractChangeError(RegistryError):
    """A move would serve vectors that production's indexes cannot be searched with."""


# Tags whose change makes every vector of the old version incomparable with the new one's.
CONTRACT_TAGS = ("embedding_dim", "tokenizer_sha256", "normalize", "similarity")


def contract_changes(production: store.VersionInfo, candidate: store.VersionInfo) -> list[str]:
    return [
        f"{tag} {production.tags.get(tag)} -> {candidate.tags.get(tag)}"
        for tag in CONTRACT_TAGS
        if production.tags.get(tag) != candidate.tags.get(tag)
    ]


def resolve_alias(name: str, version: str) -> str:
    """A version number as given (``02`` is 2), or the version an alias (``candidate``, ``@candidate``) points to."""
    alias = str(version).strip().removeprefix("@")
    if alias not in (PRODUCTION, CANDIDATE, PREVIOUS):
        return parse_version(version)
    resolved = store.alias_version(name, alias)
    if resolved is None:
        raise RegistryError(f"{name}: alias '{alias}' is not set; see `embedops models {name}`")
    return resolved


class Refusal(TypedDict):
    """``recorded_refusal``'s keyword arguments, for a job that guards more than one step with them."""

    action: Literal["promote", "rollback"]
    model: str
    current: str | None
    target: str
    reason: str


@contextmanager
def recorded_refusal(
    ctx: Context, *, action: Literal["promote", "rollback"], model: str, current: str | None, target: str, reason: str
) -> Iterator[None]:
    """A move refused for what the versions are (files, contract) is still on record, with why."""
    try:
        yield
    except EmbedopsError as exc:
        ctx.ledger.record(
            actor=ctx.actor,
            action=action,
            model=model,
            alias=PRODUCTION,
            from_version=current,
            to_version=target,
            outcome="failed",
            reason=reason,
            detail=str(exc),
        )
        raise


def check_files_or_record(
    ctx: Context, info: store.VersionInfo, *, action: Literal["promote", "rollback"], current: str | None, reason: str
) -> None:
    """A version whose files are missing, corrupt or changed never gets an alias; the attempt is on record."""
    from registry.verified import check_version_files

    with recorded_refusal(ctx, action=action, model=info.name, current=current, target=info.version, reason=reason):
        check_version_files(info)


def rollback(ctx: Context, name: str, *, reason: str, to_version: str | None = None) -> RollbackResult:
    """Point production back where the ledger says a rollback goes (or at ``to_version``), which must still load.

    Rollbacks only go back: the target is the latest earlier production version that was not itself
    rolled back from (``registry.ledger.rollback_target``, which ``previous`` always shows), so a
    second rollback never redeploys what the first one pulled. Going forward again takes a promotion
    through the gate, or an explicit ``to_version``."""
    if not reason.strip():
        raise ConfigError("rollback needs --reason (it is recorded in the ledger)")
    ctx.may_move_production(name)
    current = store.production_version(name, " to roll back")
    target = parse_version(to_version) if to_version is not None else rollback_target(ctx.ledger.history(name))
    if target is None:
        raise RegistryError(
            f"{name} has no previous production version to roll back to (none before v{current}, "
            "or each was rolled back from): pass --to-version"
        )
    if target == current:
        raise RegistryError(f"{name} v{target} is already production; nothing was moved")
    info = store.get_version(name, target)
    check_files_or_record(ctx, info, action="rollback", current=current, reason=reason)
    with recorded_refusal(ctx, action="rollback", model=name, current=current, target=info.version, reason=reason):
        indexes = check_indexes(ctx, info, current, build=False)
    move_production(
        ctx.ledger,
        name=name,
        to_version=info.version,
        expected=current,
        actor=ctx.actor,
        action="rollback",
        reason=reason,
        detail=ledger_detail(indexes),
    )
    return RollbackResult(name, info.version, current, indexes=tuple(describe(m) for m in indexes))


def history(ctx: Context, name: str, at: dt.datetime | None = None) -> HistoryResult:
    validate_name(name)
    moves = ctx.ledger.history(name)
    if not moves:
        store.list_versions(name)  # an empty history of a model that exists; a name nobody registered is an error
    if at is None:
        return HistoryResult(name, moves)
    move = ctx.ledger.alias_at(name, at)
    return HistoryResult(name, moves, at, move.to_version if move else None)
