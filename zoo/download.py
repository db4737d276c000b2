"""Downloading a file whose sha256 is known, into a cache, all or nothing.

The bytes arrive under a hidden temporary name beside the target (`keras.utils.get_file` does the
transfer: HTTP(S), proxies, a progress bar, and it refuses a body shorter than its Content-Length),
are hashed there, and only a file with the expected sha256 is renamed onto the target (a rename
within a directory is atomic). Whatever fails (the network, a short or tampered body, a kill), the
temporary file is removed: the cache only ever holds complete, verified files.
"""
import os
import warnings
from pathlib import Path

import keras

from zoo.files import sha256_of, temporary_name

__all__ = ["download_verified"]


def download_verified(url, target, sha256, what=None):
    """Download `url` to `target` unless `target` already holds the bytes with `sha256`.

    Returns `target`. Raises ValueError when the downloaded bytes have another sha256, OSError
    when the transfer fails; in both cases `target` is left as it was and nothing else remains.
    `what` names the file in messages (default: the target's name).
    """
    target = Path(target)
    what = what or target.name
    if target.is_file():
        if sha256_of(target) == sha256:
            return target
        # A cached file that does not match can only be damage on this disk (the cache is written
        # by rename after a check); it is replaced, and the warning says so.
        warnings.warn(f"The cached {target} does not match its sha256; downloading it again.",
                      stacklevel=2)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(target.parent, os.W_OK):
        raise PermissionError(f"Cannot write the download cache {target.parent} (set "
                              "ZOO_PRETRAINED_CACHE to a writable directory).")
    tmp = temporary_name(target)
    try:
        try:
            # cache_subdir as an absolute path places the file exactly at tmp (get_file would
            # otherwise fall back to another directory when cache_dir is not writable).
            keras.utils.get_file(fname=tmp.name, origin=url, cache_subdir=str(tmp.parent),
                                 force_download=True)
        except Exception as error:  # get_file re-raises every transfer failure as Exception
            raise OSError(f"Could not download {what} from {url}: {error}. Nothing was kept "
                          f"in {target.parent}.") from error
        actual = sha256_of(tmp)
        if actual != sha256:
            raise ValueError(f"The download of {what} from {url} has sha256 {actual}, the "
                             f"registry records {sha256}: the file is incomplete, corrupt or was "
                             f"modified. Refusing it; nothing was kept in {target.parent}.")
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
