"""Registry of published models.

`pretrained/registry.json` maps a name to a `.keras` file (relative to the registry), its sha256,
the model config, the data source it was trained on, training steps, seed and scores:

    model = zoo.pretrained.load("beta_vae_dsprites_b4_s0")

`load` refuses a file whose sha256 differs from the registry's (a corrupt or tampered file);
`publish` copies a trained `.keras` file next to the registry and records it.
"""
import hashlib
import json
import os
import shutil
from pathlib import Path

from zoo import models  # also registers the zoo's serializable classes for loading

DEFAULT_REGISTRY = Path(__file__).resolve().parent.parent / "pretrained" / "registry.json"


def sha256_of(path, chunk_size=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _registry_path(registry):
    return Path(registry or os.environ.get("ZOO_PRETRAINED_REGISTRY") or DEFAULT_REGISTRY)


def read_registry(registry=None):
    path = _registry_path(registry)
    if not path.exists():
        return {"models": {}}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def available(registry=None):
    """Names of the published models."""
    return sorted(read_registry(registry)["models"])


def entry(name, registry=None):
    """The registry record of `name` (config, data source, steps, seed, scores, file, sha256)."""
    published = read_registry(registry)["models"]
    if name not in published:
        raise ValueError(f"No published model named {name!r}; "
                         f"available: {sorted(published) or 'none'}.")
    return published[name]


def load(name, registry=None):
    """Verify the published file's sha256 and return the Keras model."""
    record = entry(name, registry)
    path = _registry_path(registry).parent / record["file"]
    if not path.exists():
        raise FileNotFoundError(f"Published model {name!r}: file {path} is missing.")
    actual = sha256_of(path)
    if actual != record["sha256"]:
        raise ValueError(f"Published model {name!r}: {path.name} has sha256 {actual}, the registry "
                         f"records {record['sha256']}; the file is corrupt or was modified. "
                         "Refusing to load it.")
    return models.load(path)


def publish(model_path, name, *, data_source, steps, seed, scores=None, config=None,
            registry=None, overwrite=False):
    """Copy `model_path` next to the registry as `<name>.keras` and record it.

    config defaults to the model's own config (read from the file). Returns the new record.
    """
    registry_path = _registry_path(registry)
    data = read_registry(registry_path)
    if name in data["models"] and not overwrite:
        raise ValueError(f"A model named {name!r} is already published; pass overwrite=True.")
    if config is None:
        config = models.load(model_path).get_config()
    registry_path.parent.mkdir(parents=True, exist_ok=True)
    target = registry_path.parent / f"{name}.keras"
    shutil.copyfile(model_path, target)
    record = {"file": target.name, "sha256": sha256_of(target), "config": config,
              "data_source": data_source, "steps": int(steps), "seed": int(seed),
              "scores": dict(scores or {})}
    data["models"][name] = record
    tmp = registry_path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, registry_path)
    return record
