"""Where embedops keeps its state, and the process-wide switches every entry point sets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# No network at run time: weights come from local folders, and MLflow's telemetry stays off.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # MLflow's client retries a failing request 7 times with growing pauses (minutes in all): a
    # job against a dead server should say so soon. These stay overridable.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}
TRACKING_ATTEMPTS = 3  # /health checks before a job starts (1 s, 2 s apart)


@dataclass(frozen=True)
class Settings:
    home: Path
    tracking_uri: str
    artifact_root: str | None  # None when a tracking server decides where artifacts go

    @property
    def ledger_url(self) -> str:
        """``EMBEDOPS_LEDGER_URL`` (e.g. PostgreSQL), else a SQLite file beside MLflow's store."""
        return os.environ.get("EMBEDOPS_LEDGER_URL") or f"sqlite:///{self.home / 'ledger.db'}"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache" / "embeddings"

    @property
    def negatives_cache_dir(self) -> Path:
        """Mined hard negatives, keyed by model, data, corpus and settings (a study mines once)."""
        return self.home / "cache" / "negatives"

    @property
    def shadow_report_dir(self) -> Path:
        """Where ``embedops shadow`` writes its HTML reports unless told otherwise (retention purges it too)."""
        return self.home / "shadow"

    @property
    def index_root(self) -> Path:
        """The vector store of every index: ``EMBEDOPS_INDEX_DIR``, else ``indexes/`` in the home."""
        configured = os.environ.get("EMBEDOPS_INDEX_DIR")
        return Path(configured).expanduser().resolve() if configured else self.home / "indexes"

    @property
    def corpus_root(self) -> Path:
        """Corpus versions: ``EMBEDOPS_CORPUS_DIR``, else ``corpora/`` in the home."""
        configured = os.environ.get("EMBEDOPS_CORPUS_DIR")
        return Path(configured).expanduser().resolve() if configured else self.home / "corpora"

    @property
    def embedded(self) -> bool:
        return self.artifact_root is not None

    def ui_command(self) -> str:
        if self.embedded:
            return f"mlflow ui --backend-store-uri {self.tracking_uri} --default-artifact-root {self.artifact_root}"
        return f"open {self.tracking_uri} in a browser"


def actor(explicit: str | None = None) -> str:
    """Who is acting: --actor, else EMBEDOPS_ACTOR, else the OS user."""
    import getpass

    return explicit or os.environ.get("EMBEDOPS_ACTOR") or getpass.getuser()


def release_managers(from_policy: list[str]) -> list[str]:
    """The policy's list, else EMBEDOPS_RELEASE_MANAGERS (comma-separated); empty means anyone may."""
    env = [a.strip() for a in os.environ.get("EMBEDOPS_RELEASE_MANAGERS", "").split(",") if a.strip()]
    return from_policy or env


def apply_offline_env() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative or absolute), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).expanduser().resolve()


def load_settings() -> Settings:
    """``MLFLOW_TRACKING_URI`` if set; else sqlite and artifacts under ``EMBEDOPS_HOME`` (./mlruns)."""
    home = Path(os.environ.get("EMBEDOPS_HOME") or "mlruns").expanduser().resolve()
    embedded = f"sqlite:///{home / 'mlflow.db'}"
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    # mlflow.set_tracking_uri exports the variable too, so our own default can come back through it;
    # `mlflow run` passes it on to the entry point, possibly spelled as a relative path.
    if uri and sqlite_file(uri) != home / "mlflow.db":
        return Settings(home=home, tracking_uri=uri, artifact_root=None)
    return Settings(home=home, tracking_uri=embedded, artifact_root=(home / "artifacts").as_uri())


def store_source(settings: Settings) -> str:
    """How the store in use was chosen, in the words of the variable that chose it."""
    if not settings.embedded:
        return "MLFLOW_TRACKING_URI"
    if os.environ.get("EMBEDOPS_HOME"):
        return f"EMBEDOPS_HOME={os.environ['EMBEDOPS_HOME']}"
    return "the default home ./mlruns (EMBEDOPS_HOME and MLFLOW_TRACKING_URI unset)"


def configure(create: bool = True) -> Settings:
    """Apply the environment and point MLflow at the store; every command calls this first.

    ``create=False`` (commands that only read) refuses a home with no store instead of creating an
    empty one: looking in the wrong folder says so, and leaves no stray ./mlruns behind.
    """
    apply_offline_env()
    settings = load_settings()
    if settings.embedded and not create and not (settings.home / "mlflow.db").exists():
        from embedops.core.errors import ConfigError

        raise ConfigError(
            f"no embedops store in {settings.home} (chosen by {store_source(settings)}): point EMBEDOPS_HOME "
            "at the home your jobs used (after `make demo`: export EMBEDOPS_HOME=$PWD/demo-home), or set "
            "MLFLOW_TRACKING_URI to your tracking server"
        )
    if settings.embedded:
        prepare_home(settings.home)
        create_store_once(settings)
    else:
        check_tracking_server(settings.tracking_uri)
    import mlflow

    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return settings


def prepare_home(home: Path) -> None:
    """Create the home and prove it writable, or say which folder and how to fix it.

    Without this a read-only home (or one under a file) surfaces as a PermissionError or a sqlite
    "unable to open database file" from deep inside MLflow. Writing a file is the only test that
    works for root too, whom mode bits do not stop.
    """
    import tempfile

    from embedops.core.errors import ConfigError

    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as exc:
        source = "EMBEDOPS_HOME" if os.environ.get("EMBEDOPS_HOME") else "the default home (EMBEDOPS_HOME unset)"
        raise ConfigError(
            f"{source} {home} is not a writable folder ({exc.strerror or exc}): point EMBEDOPS_HOME "
            "at a folder you can write to"
        ) from None


def create_store_once(settings: Settings) -> None:
    """Create the embedded MLflow store, once, even when several processes start together.

    Created here, MLflow's Default experiment keeps its artifacts in the home too (runs that
    `mlflow run` starts land there), not in a ./mlruns of whatever folder we run from. The file
    lock matters: two processes migrating one new sqlite file race ("duplicate column name"),
    which is what two torchrun ranks or a cron job and a person starting at once would do.
    """
    import fcntl

    if (settings.home / "mlflow.db").exists():
        return
    with open(settings.home / ".create.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (settings.home / "mlflow.db").exists():
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            SqlAlchemyStore(settings.tracking_uri, settings.artifact_root).engine.dispose()
            # WAL (kept in the file): readers never block the writer, so a UI or a drift job reading
            # while a training run logs does not turn into "database is locked".
            import sqlite3

            with sqlite3.connect(settings.home / "mlflow.db") as db:
                db.execute("PRAGMA journal_mode=WAL")


def check_tracking_server(uri: str, attempts: int = TRACKING_ATTEMPTS) -> None:
    """Before a job starts anything: is the tracking server there? A few tries, then a clear error,
    so a dead server never leaves a half-started run behind."""
    import time
    import urllib.error
    import urllib.request

    from embedops.core.errors import ServiceUnavailableError

    if not uri.startswith(("http://", "https://")):
        return
    problem = ""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5):
                return
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):  # an authenticating server is up; MLflow's client logs in
                return
            problem = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            problem = str(getattr(exc, "reason", exc))
        if attempt + 1 < attempts:
            time.sleep(2**attempt)
    raise ServiceUnavailableError(
        f"the MLflow tracking server at {uri} did not answer {attempts} health checks "
        f"({problem}); start it or fix MLFLOW_TRACKING_URI. Nothing was started."
    )
