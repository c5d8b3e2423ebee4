"""The run directory: config, metrics and results tables, atomic writes.

Layout (STYLE.md): config.yaml, metrics.jsonl (one JSON object per step), results.jsonl (one row
per measured point), samples.jsonl, checkpoints (save_pretrained), plots/, report.html.
Every trainer and the report write through here; nothing here imports a model library.
"""

import atexit
import json
import math
import os
import socket
import tempfile
from pathlib import Path

import yaml

from goodhart.errors import GoodhartError

CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
RESULTS = "results.jsonl"
LOCK = ".goodhart.lock"  # pid of the process writing the run directory
SAMPLES = "samples.jsonl"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same directory, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _clean(value):
    """JSON-safe value: numpy scalars to Python, non-finite floats to None (inside lists too: strict JSON)."""
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    """Write a whole table atomically (replacing any previous one)."""
    atomic_write_text(path, "".join(json.dumps({k: _clean(v) for k, v in r.items()}) + "\n" for r in rows))


def append_jsonl(path: str | Path, rows: list[dict]) -> None:
    """Append rows, each one whole line written in a single call, then fsync."""
    data = "".join(json.dumps({k: _clean(v) for k, v in r.items()}) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path, torn_tail: bool = False) -> list[dict]:
    """Read a JSONL table; a malformed line is reported with its line number.

    torn_tail: ignore a last line without its newline (an append cut short by a kill)."""
    return [row for _, row in iter_jsonl(path, torn_tail=torn_tail)]


def iter_jsonl(path: str | Path, what: str = "file", torn_tail: bool = False):
    """Yield (line number, object) for each non-blank line; bad JSON or a non-object names its line."""
    path = Path(path)
    if not path.is_file():
        raise GoodhartError(f"{what} {path} does not exist")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or (torn_tail and not line.endswith("\n")):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise GoodhartError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise GoodhartError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def launched() -> bool:
    """True when torchrun started this process as one of several (WORLD_SIZE; read without torch)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_rank() -> int:
    """This process's torchrun rank (RANK; 0 in a one-process run), read without torch."""
    return int(os.environ.get("RANK", "0"))


def writer() -> bool:
    """Whether this process writes run directories: always, except ranks ≠ 0 under torchrun."""
    return env_rank() == 0


def _all_checked() -> None:
    """Under torchrun: wait until every rank has checked the run directory before rank 0 changes it."""
    if launched():
        import torch.distributed  # not goodhart.dist: that floor sits above this one (it reads launched())

        if torch.distributed.is_initialized():
            torch.distributed.barrier()


def _lock_holder(path: Path) -> int | None:
    """The pid holding a run-directory lock, or None when that process no longer exists (a stale lock).
    A lock written on another host counts as held (its process cannot be checked from here)."""
    try:
        pid_text, _, host = path.read_text().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None  # torn or unreadable: its writer died mid-write
    if host.strip() and host.strip() != socket.gethostname():
        return pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return pid


def _release(path: Path, pid: int) -> None:
    if _lock_holder(path) == pid:
        path.unlink(missing_ok=True)


def remove_staging(root: Path) -> None:
    """Remove what an interrupted atomic write or checkpoint save leaves: hidden `.NAME.*.tmp` files and
    hidden `.NAME.*` staging folders, anywhere under a run directory (all goodhart's own)."""
    import shutil

    for p in sorted(root.rglob(".*"), key=lambda p: len(p.parts), reverse=True):
        if p.name == LOCK or not p.exists():
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.name.endswith(".tmp"):
            p.unlink()


def cache_dir() -> Path:
    """User cache for converted models and policy-sample pools: $GOODHART_CACHE or ~/.cache/goodhart."""
    path = Path(os.environ.get("GOODHART_CACHE", Path.home() / ".cache" / "goodhart"))
    if path.exists() and not path.is_dir():
        raise GoodhartError(f"the cache {path} (GOODHART_CACHE) is a file; point GOODHART_CACHE at a directory")
    return path


class RunDir:
    """A run directory. Creating one for a new run refuses a directory that already holds a run."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.sinks: list = []  # TensorBoard / W&B beside metrics.jsonl (config `log_to`)
        self.writer = writer()  # under torchrun only rank 0 writes; the other ranks' writes are no-ops

    def attach_sinks(self, config: dict) -> "RunDir":
        if config.get("log_to") and self.writer:
            from goodhart.sinks import make_sinks

            self.sinks = make_sinks(self.path, config)
        return self

    @classmethod
    def create(cls, path: str | Path, config: dict, overwrite: bool = False) -> "RunDir":
        """Start a new run in `path`, writing config.yaml; refuse to clobber an earlier run."""
        run = cls(path)
        if run.path.exists() and not run.path.is_dir():
            raise GoodhartError(f"output path {run.path} exists and is not a directory")
        if (run.path / CONFIG).exists() and not overwrite:
            raise GoodhartError(
                f"{run.path} already holds a run; choose another --out or pass --overwrite to replace it"
            )
        _all_checked()
        if not run.writer:
            return run
        try:
            run.path.mkdir(parents=True, exist_ok=True)
            run.lock()
            for name in (METRICS, RESULTS, SAMPLES):
                if (run.path / name).exists():
                    (run.path / name).unlink()
            atomic_write_text(run.path / CONFIG, yaml.safe_dump(config, sort_keys=False))
        except OSError as e:
            raise GoodhartError(f"cannot write the run directory {run.path}: {e.strerror or e}") from None
        return run.attach_sinks(config)

    def lock(self) -> None:
        """Take the run directory for this process (LOCK, created atomically with our pid), then remove the
        staging files and folders an interrupted save left behind. A live other holder is refused in one
        line; a lock whose process is gone (killed) is taken over. Released when this process exits."""
        path = self.path / LOCK
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _lock_holder(path)
                if holder == os.getpid():
                    break
                if holder is not None:
                    raise GoodhartError(f"{self.path} is being written by another goodhart process (pid {holder}); "
                                        "wait for it or choose another --out") from None
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}\n")
            atexit.register(_release, path, os.getpid())
            break
        remove_staging(self.path)

    @classmethod
    def reopen(cls, path: str | Path, config: dict, may_change: tuple[str, ...] = (), model=None) -> "RunDir":
        """Continue the run in `path` under `config`; refuse when a key outside `may_change` differs.

        `model` (the pydantic config class) fills keys added since the run began with their defaults."""
        run = cls(path)
        check_resumable(run, config, may_change, model)
        _all_checked()
        if run.writer:
            run.lock()
            atomic_write_text(run.path / CONFIG, yaml.safe_dump(config, sort_keys=False))
        return run.attach_sinks(config)

    def close(self) -> None:
        """The run is finished: release its lock (if this process holds it)."""
        _release(self.path / LOCK, os.getpid())

    def file(self, name: str) -> Path:
        return self.path / name

    def log_metrics(self, **metrics) -> None:
        if not self.writer:
            return
        append_jsonl(self.path / METRICS, [metrics])
        for sink in self.sinks:
            sink.log(metrics)

    def append_results(self, rows: list[dict]) -> None:
        if self.writer:
            append_jsonl(self.path / RESULTS, rows)

    def results(self) -> list[dict]:
        return read_jsonl(self.path / RESULTS)

    def config(self) -> dict:
        path = self.path / CONFIG
        if not path.is_file():
            raise GoodhartError(f"{self.path} is not a goodhart run directory (no {CONFIG})")
        return yaml.safe_load(path.read_text()) or {}


def model_card(kind: str, model, facts: dict, config_file: Path | None = None) -> str:
    """README.md for a saved checkpoint: HF metadata, what it is, how it was made, how to load it."""
    import hashlib
    import importlib.metadata

    facts = {"goodhart version": importlib.metadata.version("goodhart"),
             "base model": getattr(model.config, "_name_or_path", "") or type(model).__name__,
             "parameters": f"{sum(p.numel() for p in model.parameters()):,}"} | facts
    if config_file is not None and Path(config_file).is_file():
        facts["config sha256"] = hashlib.sha256(Path(config_file).read_bytes()).hexdigest()[:16]
    tags = ["goodhart", "reward-model" if "reward" in kind else "policy"]
    rows = "\n".join(f"| {k} | {v} |" for k, v in facts.items() if v is not None)
    loader = "AutoModelForSequenceClassification" if "reward" in kind else "AutoModelForCausalLM"
    return (f"---\nlibrary_name: transformers\ntags: [{', '.join(tags)}]\n---\n\n# {kind} (goodhart)\n\n"
            f"| | |\n|---|---|\n{rows}\n\n```python\nfrom transformers import {loader}, AutoTokenizer\n"
            f"model = {loader}.from_pretrained(PATH)\ntokenizer = AutoTokenizer.from_pretrained(PATH)\n```\n"
            "Made with goodhart (gold-vs-proxy reward-model overoptimization studies); the run directory "
            "above this checkpoint holds config.yaml, metrics.jsonl and results.jsonl.\n")


def require_run(path: str | Path) -> "RunDir":
    """The run in `path` for --resume; none there is an error (checked before any work starts)."""
    run = RunDir(path)
    if not run.file(CONFIG).is_file():
        raise GoodhartError(f"nothing to resume in {run.path} (no run there); drop --resume to start one")
    return run


def resume_run(path: str | Path, config: dict, state_file: str, may_change: tuple[str, ...] = (),
               model=None, check_state=None) -> "RunDir":
    """`--resume`: reopen the run in `path` from its training state `state_file`; a run killed before its
    first checkpoint (config but no state) restarts cleanly under the same config; nothing there is an error.
    `check_state(path)` (the caller's: it knows what its state holds) refuses a foreign state file before
    config.yaml is touched."""
    run = require_run(path)
    if run.file(state_file).is_file():
        if check_state is not None:
            check_state(run.file(state_file))
        return RunDir.reopen(path, config, may_change=may_change, model=model)
    check_resumable(run, config, may_change, model)
    return RunDir.create(path, config, overwrite=True)  # killed before its first checkpoint: start again


def check_resumable(run: "RunDir", config: dict, may_change: tuple[str, ...] = (), model=None) -> None:
    """Refuse to continue `run` under `config` when a key outside `may_change` differs from its saved config."""
    saved = saved_config(run, model)
    differ = sorted(k for k in set(saved) | set(config) if k not in may_change and saved.get(k) != config.get(k))
    if differ:
        allowed = f" (only {', '.join(may_change)} may change)" if may_change else ""
        raise GoodhartError(f"cannot resume {run.path}: its config differs in {', '.join(differ)}{allowed}")


def saved_config(run: "RunDir", model=None) -> dict:
    """The run's config.yaml, re-validated through `model` when given (new keys get their defaults)."""
    saved = run.config()
    if model is None:
        return saved
    from pydantic import ValidationError

    try:
        return model.model_validate(saved).model_dump(mode="json")
    except ValidationError as e:
        raise GoodhartError(f"{run.path / CONFIG} no longer validates ({e.errors()[0]['msg']}); start a new run") from None


def save_checkpoint(run: RunDir, name: str, model, tokenizer, card: dict | None = None,
                    kind: str = "reward model", state_dict: dict | None = None) -> Path:
    """save_pretrained (safetensors) model + tokenizer + model card README.md into run/name, via a temp
    dir and a rename. `card`: facts for the card (data size, label noise, validation accuracy, …).
    `state_dict`: the weights to save when the model's own are sharded (FSDP). Rank 0 only under torchrun."""
    import shutil

    target = run.path / name
    if not run.writer:
        return target
    tmp = Path(tempfile.mkdtemp(dir=run.path, prefix=f".{name}."))
    os.chmod(tmp, 0o777 & ~_umask())
    model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
    tokenizer.save_pretrained(tmp)
    (tmp / "README.md").write_text(model_card(kind, model, card or {}, run.path / CONFIG), encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def finished_units(cfg, out: Path, overwrite: bool, resume: bool, may_change: tuple[str, ...], unit_key: str,
                   done_study: str, what: str = "study") -> dict[str, list[dict]] | None:
    """Read-only check of `out` for a command made of units (a study's cells, a suite's replicates):
    None for a new directory, else the rows of finished units by their `unit_key` value.

    A unit is finished when a row with study == `done_study` carries its key (each unit writes that row
    last); a torn last line from a kill is ignored. Refuses an existing directory without --resume /
    --overwrite, and a resumed one whose config differs outside `may_change`.
    """
    if resume and not overwrite and not (out / CONFIG).exists():
        raise GoodhartError(f"nothing to resume in {out} (no {what} there); drop --resume to start one")
    if not (out / CONFIG).exists() or overwrite:
        return None
    if not resume:
        raise GoodhartError(f"{out} already holds a {what}; pass --resume to continue it (finished parts are "
                            "skipped) or --overwrite to start again")
    check_resumable(RunDir(out), cfg.model_dump(mode="json"), may_change, type(cfg))
    results = out / RESULTS
    if not results.is_file():
        return {}
    rows = read_jsonl(results, torn_tail=True)
    done = {r[unit_key] for r in rows if r.get("study") == done_study}
    by_unit: dict[str, list[dict]] = {}
    for r in rows:
        if r.get(unit_key) in done:
            by_unit.setdefault(r[unit_key], []).append(r)
    return by_unit


def open_units(cfg, out: Path, overwrite: bool, finished: dict | None, may_change: tuple[str, ...]) -> RunDir:
    """Create the directory, or reopen it keeping exactly the finished units' rows (see finished_units)."""
    config = cfg.model_dump(mode="json")
    if finished is None:
        return RunDir.create(out, config, overwrite=overwrite)
    run = RunDir.reopen(out, config, may_change=may_change, model=type(cfg))
    write_jsonl(run.file(RESULTS), [r for rows in finished.values() for r in rows])
    return run
