"""Writing files so that a kill, a full disk or a second writer never leaves a partial one: every
file is written to a uniquely named temporary file beside it and renamed into place (a rename
within a directory is atomic on POSIX file systems), and a failed write removes its temporary
file. Also the sha256 of a file, which the registry and the checkpoint manifest record."""
import hashlib
import json
import os
import uuid
from pathlib import Path


def temporary_name(path):
    """A hidden name beside `path`, unique per process and call, with the same suffix (Keras
    insists on `.keras`)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")


def replace_via_temporary(path, write):
    """write(temporary_path), then rename it onto `path`; the temporary file is removed when
    writing fails."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path, text):
    """Write `text` to `path` atomically (temporary file, fsync, rename)."""
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    replace_via_temporary(path, write)


def write_json(path, value, **dump_options):
    """Write `value` as indented JSON to `path` atomically."""
    write_text(path, json.dumps(value, indent=2, **dump_options) + "\n")


def sha256_of(path, chunk_size=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()
