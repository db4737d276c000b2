"""Registry of published models.

`pretrained/registry.json` maps a name to a `.keras` file (relative to the registry), its sha256,
the model config, the data source it was trained on, training steps, seed and scores, and
optionally a SavedModel archive with its sha256:

    model = zoo.pretrained.load("beta_vae_dsprites")
    archive = zoo.pretrained.fetch("beta_vae_dsprites", artifact="saved_model")

In a checkout the files lie next to the registry. An installed package carries the registry but
not the files: `fetch` downloads a missing file from the URL template (`{file}` is replaced by the
file name) of `$ZOO_PRETRAINED_URL`, else of the entry's `url_template`, else of the registry's
top-level `url_template`, into a cache (`$ZOO_PRETRAINED_CACHE`, default
`~/.keras/zoo_pretrained`), all or nothing (zoo.download).

Every file is checked against the registry's sha256 and refused on a mismatch; `load` loads the
very bytes it hashed (a private copy), so the file cannot change between the two. `publish` copies
a trained `.keras` file next to the registry as `<name>.<sha256[:12]>.keras` and records it.

The registry cannot be turned against its files: names are `[a-z0-9_.-]` (no path separators, no
leading dot), every file it names must resolve inside the registry's directory, and `publish`
checks every argument and the model file before it writes anything, then writes the new file under
a new name and replaces the registry by rename, so at every moment the registry names files whose
sha256 it records.
"""
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.parse
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from zoo import models  # also registers the zoo's serializable classes for loading
from zoo.download import download_verified
from zoo.files import sha256_of, temporary_name, write_json

__all__ = ["available", "check_name", "entry", "extract_saved_model", "fetch", "load",
           "preset_inputs", "preset_numbers", "publish", "read_registry", "registry_path",
           "sha256_of", "unpack_saved_model", "url"]

# setup.py installs a copy of pretrained/registry.json as zoo/published/registry.json (without the
# model files, which `fetch` downloads); a checkout has no such copy and uses its own registry.
_INSTALLED_REGISTRY = Path(__file__).resolve().parent / "published" / "registry.json"
_CHECKOUT_REGISTRY = Path(__file__).resolve().parent.parent / "pretrained" / "registry.json"
DEFAULT_REGISTRY = _INSTALLED_REGISTRY if _INSTALLED_REGISTRY.is_file() else _CHECKOUT_REGISTRY
NAME_PATTERN = re.compile(r"[a-z0-9_][a-z0-9_.-]*")
ARTIFACTS = ("keras", "saved_model")


def registry_path(registry=None):
    """The registry file: `registry`, else $ZOO_PRETRAINED_REGISTRY, else DEFAULT_REGISTRY."""
    return Path(registry or os.environ.get("ZOO_PRETRAINED_REGISTRY") or DEFAULT_REGISTRY)


def cache_directory(cache_dir=None):
    """Where downloaded files are kept: `cache_dir`, else $ZOO_PRETRAINED_CACHE, else
    zoo_pretrained/ in the Keras home ($KERAS_HOME or ~/.keras)."""
    if cache_dir or os.environ.get("ZOO_PRETRAINED_CACHE"):
        return Path(cache_dir or os.environ["ZOO_PRETRAINED_CACHE"]).expanduser()
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / \
        "zoo_pretrained"


def _check_url_template(template, where):
    if not isinstance(template, str) or "{file}" not in template:
        raise ValueError(f"{where}: a URL template must be a string containing {{file}} (e.g. "
                         f"https://example.org/pretrained/{{file}}), got {template!r}.")
    return template


def check_name(name):
    """A published model's name: lowercase letters, digits, `_`, `.` and `-`, not starting with a
    dot (so never `.`, `..`, a hidden file or a path)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"Invalid model name {name!r}: use lowercase letters, digits, '_', '.' "
                         "and '-', not starting with '.' (no path separators).")
    return name


def _file_in_registry(registry_file, filename, name):
    """The path of a registry entry's file, refused unless it lies inside the registry's
    directory (an entry cannot point the registry at another file on the machine)."""
    directory = registry_file.parent.resolve()
    path = (directory / str(filename)).resolve()
    if path.parent != directory:
        raise ValueError(f"Published model {name!r}: its file {filename!r} in {registry_file} is "
                         f"not a file of the registry's directory {directory}; refusing it.")
    return path


def read_registry(registry=None):
    path = registry_path(registry)
    if not path.exists():
        return {"models": {}}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"The model registry {path} is damaged (not valid JSON: {error}); "
                         "restore it from version control.") from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ValueError(  # noqa: TRY004 (a damaged file, like the JSON error above)
            f'The model registry {path} is damaged (no "models" mapping); restore it from '
            "version control.")
    if data.get("url_template") is not None:
        _check_url_template(data["url_template"], f"The model registry {path}")
    return data


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


def _artifact(record, artifact, name):
    """The {"file", "sha256"} of one of an entry's artifacts."""
    if artifact == "keras":
        return {"file": record.get("file"), "sha256": record.get("sha256")}
    if artifact == "saved_model":
        if not isinstance(record.get("saved_model"), dict):
            raise ValueError(f"Published model {name!r} has no SavedModel archive in the "
                             "registry.")
        return record["saved_model"]
    raise ValueError(f"artifact must be one of {ARTIFACTS}, got {artifact!r}.")


def _check_sha256(path, expected, name):
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(f"Published model {name!r}: {path.name} has sha256 {actual}, the "
                         f"registry records {expected}; the file is corrupt or was modified. "
                         "Refusing to load it.")


def url(name, artifact="keras", registry=None):
    """The URL `fetch` downloads `name`'s artifact from, or None when no template is set
    ($ZOO_PRETRAINED_URL, else the entry's url_template, else the registry's)."""
    registry_file = registry_path(registry)
    data = read_registry(registry_file)
    record = entry(name, registry_file)
    path = _file_in_registry(registry_file, _artifact(record, artifact, name)["file"], name)
    for where, template in (("$ZOO_PRETRAINED_URL", os.environ.get("ZOO_PRETRAINED_URL")),
                            (f"{name!r} in {registry_file}", record.get("url_template")),
                            (str(registry_file), data.get("url_template"))):
        if template:
            return _check_url_template(template, where).replace(
                "{file}", urllib.parse.quote(path.name))
    return None


def fetch(name, artifact="keras", registry=None, cache_dir=None):
    """A local path of `name`'s artifact ("keras": the .keras file, "saved_model": the SavedModel
    .tar.gz archive) whose sha256 matches the registry's: the registry's own file when it is there
    (a checkout), else a verified download into the cache (see `cache_directory`)."""
    return _fetch(name, artifact, registry, cache_dir)[0]


def _fetch(name, artifact, registry, cache_dir):
    """fetch's path and the sha256 the registry records for it."""
    registry_file = registry_path(registry)
    published = _artifact(entry(name, registry_file), artifact, name)
    local = _file_in_registry(registry_file, published["file"], name)
    if local.is_file():
        # A file that is present but wrong is refused, never replaced by a download: it says
        # that this checkout or installation was changed.
        _check_sha256(local, published["sha256"], name)
        return local, published["sha256"]
    address = url(name, artifact, registry_file)
    if address is None:
        raise FileNotFoundError(
            f"Published model {name!r}: {local.name} is not in {registry_file.parent} and no "
            "URL to download it from is set: set ZOO_PRETRAINED_URL to a template with {file} "
            "(e.g. https://example.org/pretrained/{file}), or the registry's url_template.")
    path = download_verified(address, cache_directory(cache_dir) / local.name,
                             published["sha256"], what=f"published model {name!r} ({local.name})")
    return path, published["sha256"]


def load(name, registry=None, cache_dir=None):
    """Verify the published file's sha256 and return the Keras model made from those bytes
    (downloaded first when the registry's directory does not hold it: see `fetch`)."""
    path, sha256 = _fetch(name, "keras", registry, cache_dir)
    with tempfile.TemporaryDirectory(prefix="zoo_pretrained_") as private:
        copy = Path(private) / "model.keras"
        shutil.copyfile(path, copy)  # hash and load this copy: nobody else writes it
        _check_sha256(copy, sha256, name)
        return models.load(copy)


def extract_saved_model(name, directory, registry=None, cache_dir=None):
    """Unpack `name`'s verified SavedModel archive into `directory` and return the SavedModel's
    path (for `tf.saved_model.load` or TF Serving)."""
    return unpack_saved_model(fetch(name, "saved_model", registry, cache_dir), directory)


def unpack_saved_model(archive, directory):
    """Unpack a SavedModel archive (saved_model/ in a .tar.gz) into `directory`; returns
    `directory`/saved_model."""
    archive, target = Path(archive), Path(directory) / "saved_model"
    if target.exists():
        raise FileExistsError(f"{target} already exists; unpack into another directory.")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unpacked beside the target and renamed into place: a failure leaves no partial SavedModel.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".unpacking_") as scratch:
        with tarfile.open(archive, "r:gz") as tar:
            # The "data" filter refuses absolute paths, links and members outside `scratch`.
            tar.extractall(scratch, filter="data")
        if not (Path(scratch) / "saved_model" / "saved_model.pb").is_file():
            raise ValueError(f"{archive.name} holds no saved_model/ directory with a "
                             "saved_model.pb.")
        os.replace(Path(scratch) / "saved_model", target)
    return target


# ------------------------------------------------------------------------------ preset numbers
# Publishing records a few outputs of the .keras model and of the SavedModel on fixed inputs;
# tests/test_pretrained_presets.py recomputes them from the published files, so a published model
# cannot change silently (keras-hub's preset tests do the same).
PRESET_SEED = 20  # the issue that introduced presets
PRESET_IMAGES = 2
PRESET_VALUES = 6  # leading values of each image's representation
# Float tolerance of a preset check: CPUs and TF builds differ in the last bits (oneDNN, AVX
# widths); retraining or changed weights move these numbers by far more.
PRESET_RTOL, PRESET_ATOL = 1e-3, 1e-4


def preset_inputs(input_shape):
    """The fixed inputs: 2 sparse binary images (dSprites-like) drawn by NumPy's PCG64 generator
    from PRESET_SEED, identical on every machine and NumPy version."""
    rng = np.random.default_rng(PRESET_SEED)
    return (rng.random((PRESET_IMAGES, *input_shape)) > 0.9).astype("float32")


def preset_numbers(model, input_shape):
    """{"representation": the leading values of each image's representation, "reconstruction_mean":
    each image's mean reconstruction} of a Keras model, or of a loaded SavedModel through its
    `representation` and `reconstruct` endpoints: the encoder and the decoder both move them.
    A model with `img2sym` and `sym2img` (SCAN) adds "img2sym" and "sym2img_mean"."""
    x = preset_inputs(input_shape)
    if isinstance(model, keras.Model):
        representation, reconstruction = model.representation(x), model(x)
    else:
        representation = model.representation(tf.constant(x))["representation"]
        reconstruction = model.reconstruct(tf.constant(x))["reconstruction"]
    representation = np.asarray(representation, dtype="float64").reshape(PRESET_IMAGES, -1)
    reconstruction = np.asarray(reconstruction, dtype="float64").reshape(PRESET_IMAGES, -1)
    numbers = {"representation": representation[:, :PRESET_VALUES].tolist(),
               "reconstruction_mean": reconstruction.mean(axis=1).tolist()}
    if hasattr(model, "img2sym") and hasattr(model, "sym2img"):
        numbers.update(_symbol_preset_numbers(model, x, representation.shape[1]))
    return numbers


def _symbol_preset_numbers(model, x, latent_dim):
    """A SCAN's (or its SavedModel's `img2sym` and `sym2img` endpoints') preset numbers: the
    leading word probabilities of the preset images, and the mean pixel of the images decoded
    (noise 0) from the symbols {first word} and {first word, last word}, which the symbol
    networks and the visual decoder both move."""
    keras_model = isinstance(model, keras.Model)
    probabilities = model.img2sym(x) if keras_model \
        else model.img2sym(tf.constant(x))["probabilities"]
    probabilities = np.asarray(probabilities, dtype="float64")
    symbols = np.zeros((PRESET_IMAGES, probabilities.shape[1]), "float32")
    symbols[:, 0] = 1.0
    symbols[1:, -1] = 1.0
    noise = np.zeros((PRESET_IMAGES, latent_dim), "float32")
    images = model.sym2img(symbols, noise) if keras_model \
        else model.sym2img(tf.constant(symbols), tf.constant(noise))["images"]
    images = np.asarray(images, dtype="float64").reshape(PRESET_IMAGES, -1)
    return {"img2sym": probabilities[:, :PRESET_VALUES].tolist(),
            "sym2img_mean": images.mean(axis=1).tolist()}


def _check_record_fields(data_source, steps, seed, scores):
    if not isinstance(data_source, str) or not data_source.strip():
        raise ValueError(f"data_source must be a non-empty string, got {data_source!r}.")
    for field, value in (("steps", steps), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{field} must be an integer ≥ 0, got {value!r}.")
    scores = dict(scores or {})
    for key, value in scores.items():
        # NaN is allowed: a metric can be undefined for a model, and says so.
        if not isinstance(key, str) or isinstance(value, bool) or \
                not isinstance(value, (int, float)):
            raise TypeError(f"scores must map names to numbers; got {key!r}: {value!r}.")
    return scores


def published_file_name(name, digest, suffix):
    """The registry's content-addressed file name: `<name>.<sha256[:12]><suffix>`."""
    return f"{name}.{digest[:12]}{suffix}"


def publish(model_path, name, *, data_source, steps, seed, scores=None, config=None,
            registry=None, overwrite=False, saved_model=None, card=None, presets=None):
    """Copy `model_path` next to the registry and record it under `name`.

    Everything is checked before anything is written: the name, the record's fields, the registry,
    and the model file (it must load, from the very copy that is published). config defaults to
    the model's own config. `saved_model` (a SavedModel archive file) is published beside it with
    its sha256; `card` (JSON-serialisable: the model card's facts and the card's path) and
    `presets` (the `preset_numbers` of both artifacts) are recorded as they are. Returns the new
    record.
    """
    check_name(name)
    scores = _check_record_fields(data_source, steps, seed, scores)
    registry_file = registry_path(registry)
    data = read_registry(registry_file)
    if name in data["models"] and not overwrite:
        raise ValueError(f"A model named {name!r} is already published; pass overwrite=True.")
    if saved_model is not None and not Path(saved_model).is_file():
        raise FileNotFoundError(f"saved_model archive {saved_model} does not exist.")
    previous = data["models"].get(name, {})
    old_files = [previous.get("file"), previous.get("saved_model", {}).get("file")]
    registry_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(registry_file.parent / f"{name}.keras")
    tmp_archive = temporary_name(registry_file.parent / f"{name}.savedmodel.tar.gz")
    try:
        shutil.copyfile(model_path, tmp)
        model = models.load(tmp)  # refuses a file that is not a loadable Keras model
        digest = sha256_of(tmp)
        record = {"file": published_file_name(name, digest, ".keras"), "sha256": digest,
                  "config": model.get_config() if config is None else config,
                  "data_source": data_source, "steps": int(steps), "seed": int(seed),
                  "scores": scores}
        if saved_model is not None:
            shutil.copyfile(saved_model, tmp_archive)
            archive_digest = sha256_of(tmp_archive)
            record["saved_model"] = {
                "file": published_file_name(name, archive_digest, ".savedmodel.tar.gz"),
                "sha256": archive_digest}
        if card is not None:
            record["card"] = card
        if presets is not None:
            record["presets"] = presets
        json.dumps(record)  # a config that cannot be written is refused before any change
        os.replace(tmp, registry_file.parent / record["file"])
        if saved_model is not None:
            os.replace(tmp_archive, registry_file.parent / record["saved_model"]["file"])
    finally:
        for leftover in (tmp, tmp_archive):
            if leftover.exists():
                leftover.unlink()
    data["models"][name] = record
    write_json(registry_file, data, sort_keys=True)
    new_files = {record["file"], record.get("saved_model", {}).get("file")}
    for old_file in old_files:
        if old_file and old_file not in new_files:
            old = _file_in_registry(registry_file, old_file, name)
            if old.exists():
                old.unlink()
    return record
