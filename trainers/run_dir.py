"""A run directory that survives kills, full disks, damaged files and a second process.

- `RunLock`: one process per directory (an exclusive `fcntl` lock on `run.lock`, which holds the
  holder's pid). The kernel drops the lock when its holder dies, so a stale lock file is simply
  taken over.
- `CheckpointStore`: the last `keep` checkpoints `checkpoint-<step>.keras`, listed newest last in the
  manifest `checkpoint_state.json` with each file's step, sha256 and training wall time, and the
  run's identity (its settings). A checkpoint is written to a temporary file and renamed before the
  manifest names it, and the manifest itself is replaced by rename, so a kill at any moment leaves
  the previous manifest and the files it names intact. `restore` verifies the newest checkpoint
  (sha256, loadable, finite) and falls back to the previous one with a warning.
- `save_model` / `zoo.files.write_json` / `read_json`: every file written via a uniquely named
  temporary file and a rename; a model with non-finite weights is never written; a damaged JSON
  file is reported by name with what to do.
"""
import fcntl
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from zoo.files import replace_via_temporary, sha256_of, write_json, write_text

__all__ = ["CheckpointStore", "NonFiniteModelError", "RunDirError", "RunLock", "check_identity",
           "latest_checkpoint", "nonfinite_variables", "read_json", "resumable_files",
           "save_model", "sha256_of", "write_json", "write_text"]

MANIFEST = "checkpoint_state.json"
LOCK = "run.lock"
MANIFEST_FORMAT = 2


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (locked, damaged, another run's)."""


def read_json(path, advice):
    """The JSON content of `path`; a damaged file is a RunDirError naming it and `advice`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunDirError(f"{path} is damaged (not valid JSON: {error}); {advice}") from None


def nonfinite_variables(model):
    """Names of the model's variables (weights and optimizer slots) holding NaN or ±inf."""
    variables = list(model.variables)
    for optimizer in model.optimizers:
        variables += list(optimizer.variables)
    return [v.path for v in variables
            if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v.numpy()))]


class NonFiniteModelError(RuntimeError):
    """Training diverged: a loss term, gradient or weight is NaN or infinite."""


def save_model(model, path):
    """model.save to a uniquely named temporary file, then rename: a kill mid-write never leaves a
    broken file, and a model with non-finite values is refused rather than written."""
    bad = nonfinite_variables(model)
    if bad:
        raise NonFiniteModelError(
            f"Refusing to write {path}: {len(bad)} variable(s) hold NaN or infinite values "
            f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); training diverged.")
    replace_via_temporary(path, model.save)


class RunLock:
    """Exclusive lock on `<directory>/run.lock` for as long as the context lasts; a second process
    (or a second lock in this one) is refused at once, naming the holder's pid."""

    def __init__(self, directory):
        self.path = Path(directory) / LOCK
        self.file = None

    def __enter__(self):
        file = open(self.path, "a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise RunDirError(f"{self.path.parent} is in use by another training process (pid "
                              f"{holder}, holding {self.path}); wait for it to finish or use "
                              "another --output_dir.") from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self.file = file
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()
        self.file = None


def check_identity(saved, identity, directory, hint=""):
    """Refuse to continue the run saved in `directory` with other settings (`hint` ends the
    message). A setting left to the model's default (None) takes the saved value; `identity` is
    updated in place."""
    for key, value in identity.items():
        if value is None and key in ("latent_dim", "learning_rate"):
            identity[key] = saved.get(key)
    changed = {k: (saved.get(k), v) for k, v in identity.items() if saved.get(k) != v}
    if changed:
        details = ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in changed.items())
        raise RunDirError(f"{directory} holds a run with different settings ({details}){hint}; "
                          "use another --output_dir or the same settings to resume it.")


class CheckpointStore:
    """The checkpoints of one run directory (see the module docstring)."""

    def __init__(self, directory, keep=2):
        if int(keep) < 1:
            raise ValueError(f"checkpoints_kept must be ≥ 1, got {keep!r}.")
        self.directory, self.keep = Path(directory), int(keep)
        self.manifest_path = self.directory / MANIFEST
        self.advice = (f"restore it from a copy of the run, or delete {self.directory} (or use "
                       "another --output_dir) to train from scratch.")

    def manifest(self):
        """The manifest, or None when there is none; a manifest of the first format (one
        `checkpoint.keras`, settings in `config.json`) is read as a one-entry list."""
        if not self.manifest_path.exists():
            return None
        manifest = read_json(self.manifest_path, self.advice)
        if not isinstance(manifest, dict):
            raise RunDirError(f"{self.manifest_path} is damaged (not a JSON object); "
                              f"{self.advice}")
        if "checkpoints" not in manifest:  # written before checkpoints were kept in a list
            config_path = self.directory / "config.json"
            config = read_json(config_path, self.advice) if config_path.exists() else {}
            manifest = {"format": 1, "run": config, "checkpoints": [
                {"file": "checkpoint.keras", "step": manifest.get("global_step"),
                 "sha256": None, "train_wall_time_s": manifest.get("train_wall_time_s", 0.0)}]}
        return manifest

    def save(self, model, identity, elapsed):
        """Write a checkpoint of `model` and make it the newest in the manifest; drop the ones
        beyond `keep`."""
        step = int(model.global_step.numpy())
        manifest = self.manifest() or {}
        # Earlier checkpoints of this format stay (a later one, left by a fallback, goes).
        entries = [e for e in manifest.get("checkpoints", [])
                   if manifest.get("format") == MANIFEST_FORMAT and e["step"] < step]
        path = self.directory / f"checkpoint-{step:09d}.keras"
        save_model(model, path)
        entries.append({"file": path.name, "step": step, "sha256": sha256_of(path),
                        "train_wall_time_s": round(float(elapsed), 3)})
        kept = entries[-self.keep:]
        write_json(self.manifest_path, {"format": MANIFEST_FORMAT, "global_step": step,
                                        "train_wall_time_s": round(float(elapsed), 3),
                                        "run": identity, "checkpoints": kept})
        # Only now, with the new manifest in place, are older files no longer needed.
        named = {e["file"] for e in kept}
        for old in list(self.directory.glob("checkpoint-*.keras")) + [
                self.directory / "checkpoint.keras"]:
            if old.name not in named and old.exists():
                old.unlink()

    def restore(self, load, warn=print):
        """(model, entry) of the newest usable checkpoint: its sha256 matches, it loads (`load`)
        and it holds finite values; an unusable newer one is skipped with a warning. None when the
        directory has no manifest; a RunDirError when no listed checkpoint is usable."""
        manifest = self.manifest()
        if manifest is None:
            return None
        problems = []
        for entry in reversed(manifest["checkpoints"]):
            model, problem = self._load_checked(entry, load)
            if problem is None:
                return model, entry
            problems.append(f"{entry['file']}: {problem}")
            warn(f"Warning: checkpoint {self.directory / str(entry['file'])} is unusable "
                 f"({problem}); trying an earlier one.")
        raise RunDirError(f"{self.directory} holds a run but none of its checkpoints is usable "
                          f"({'; '.join(problems) or 'none listed'}); {self.advice}")

    def _load_checked(self, entry, load):
        """(model, None) for a usable checkpoint, else (None, why it is unusable)."""
        name = str(entry.get("file"))
        if Path(name).name != name or not name.endswith(".keras"):
            return None, f"the manifest names {name!r}, not a file of this directory"
        path = self.directory / name
        if not path.is_file():
            return None, "the file is missing"
        if entry.get("sha256") and sha256_of(path) != entry["sha256"]:
            return None, "its sha256 differs from the manifest's: the file is damaged"
        try:
            model = load(path)
        # What Keras and h5py raise for a damaged archive, config or weights file.
        except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as error:
            return None, f"it does not load: {error}"
        bad = nonfinite_variables(model)
        if bad:
            return None, f"{len(bad)} variable(s) hold NaN or infinite values"
        step = int(model.global_step.numpy())
        if entry.get("step") is not None and step != entry["step"]:
            return None, f"it holds step {step}, the manifest says {entry['step']}"
        return model, None


def latest_checkpoint(directory):
    """The path of the newest checkpoint the manifest of run `directory` lists."""
    manifest = CheckpointStore(directory).manifest()
    if manifest is None:
        raise RunDirError(f"{directory} has no {MANIFEST}: it holds no checkpoint.")
    return Path(directory) / manifest["checkpoints"][-1]["file"]


def resumable_files(directory):
    """The names of the files of run `directory` that make its resumable checkpoint: the manifest
    and the checkpoints it lists (first format: `checkpoint_state.json`, `checkpoint.keras` and
    `config.json`); [] when it holds none. Copied into another directory, they resume there."""
    manifest = CheckpointStore(directory).manifest()
    if manifest is None:
        return []
    listed = [entry["file"] for entry in manifest["checkpoints"]]
    extra = ["config.json"] if manifest.get("format") == 1 else []
    return [MANIFEST] + listed + extra
