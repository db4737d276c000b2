"""zoo.pretrained where the registry's files are absent (an installed package): downloads from a
local HTTP server on 127.0.0.1 into a cache, verified by sha256, never leaving a partial file."""
import http.server
import io
import json
import shutil
import tarfile
import threading

import numpy as np
import pytest

from zoo import models, pretrained


class Server:
    """An HTTP server on 127.0.0.1 (a free port) serving `files` {name: bytes}, in a thread.
    `mode` changes what it sends: "good", "short" (fewer bytes than its Content-Length, then it
    closes the connection) or "unsized" (half the body, no Content-Length, then it closes)."""

    def __init__(self):
        self.files, self.mode, self.requests = {}, "good", []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if server.mode != "unsized":
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if server.mode == "good" else body[:len(body) // 2])
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    served = Server()
    yield served
    served.close()


@pytest.fixture
def installed(tmp_path, server):
    """A registry whose files are on the server only (as in an installed package), with its
    url_template pointing there; returns (model, registry path, cache directory)."""
    model = models.BetaVAE(latent_dim=3, seed=1)
    model.save(tmp_path / "trained.keras")
    archive = tmp_path / "archive.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # a stand-in SavedModel: the layout is checked
        info = tarfile.TarInfo("saved_model/saved_model.pb")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"proto"))
    registry = tmp_path / "published" / "registry.json"
    record = pretrained.publish(tmp_path / "trained.keras", "tiny", data_source="test", steps=0,
                                seed=1, registry=registry, saved_model=archive)
    data = json.loads(registry.read_text())
    data["url_template"] = server.url + "/files/{file}"
    registry.write_text(json.dumps(data))
    for published in (record, record["saved_model"]):
        path = registry.parent / published["file"]
        server.files[f"files/{published['file']}"] = path.read_bytes()
        path.unlink()  # the installed package has the registry, not the files
    return model, registry, tmp_path / "cache"


def cache_listing(cache):
    """Every file in the cache, hidden temporary files included."""
    return sorted(p.name for p in cache.rglob("*")) if cache.exists() else []


def test_a_missing_file_is_downloaded_verified_and_then_served_from_the_cache(installed, server,
                                                                              binary_images):
    model, registry, cache = installed
    loaded = pretrained.load("tiny", registry=registry, cache_dir=cache)
    np.testing.assert_array_equal(loaded(binary_images).numpy(), model(binary_images).numpy())
    file = pretrained.entry("tiny", registry)["file"]
    assert cache_listing(cache) == [file]
    assert server.requests == [f"/files/{file}"]
    pretrained.load("tiny", registry=registry, cache_dir=cache)
    assert len(server.requests) == 1  # the cached copy is used (after checking its sha256)


def test_the_saved_model_archive_is_fetched_and_extracted(installed, tmp_path):
    _, registry, cache = installed
    archive = pretrained.fetch("tiny", artifact="saved_model", registry=registry, cache_dir=cache)
    assert archive.parent == cache
    assert pretrained.sha256_of(archive) == pretrained.entry("tiny", registry)["saved_model"][
        "sha256"]
    saved = pretrained.extract_saved_model("tiny", tmp_path / "serving", registry=registry,
                                           cache_dir=cache)
    assert (saved / "saved_model.pb").read_bytes() == b"proto"
    assert sorted(p.name for p in (tmp_path / "serving").iterdir()) == ["saved_model"]


def test_a_tampered_download_is_refused_and_nothing_is_cached(installed, server):
    _, registry, cache = installed
    key = f"files/{pretrained.entry('tiny', registry)['file']}"
    content = bytearray(server.files[key])
    content[len(content) // 2] ^= 0xFF
    server.files[key] = bytes(content)
    with pytest.raises(ValueError, match="sha256.*corrupt or was modified.*nothing was kept"):
        pretrained.load("tiny", registry=registry, cache_dir=cache)
    assert cache_listing(cache) == []


@pytest.mark.parametrize("mode, error, message", [
    ("short", OSError, "Could not download .*retrieval incomplete"),  # Content-Length says more
    ("unsized", ValueError, "sha256.*incomplete"),  # no length to compare: the sha256 catches it
])
def test_an_interrupted_transfer_is_refused_and_nothing_is_cached(installed, server, mode,
                                                                  error, message):
    _, registry, cache = installed
    server.mode = mode
    for artifact in pretrained.ARTIFACTS:
        with pytest.raises(error, match=message):
            pretrained.fetch("tiny", artifact, registry=registry, cache_dir=cache)
    assert cache_listing(cache) == []
    server.mode = "good"  # the next attempt succeeds
    pretrained.load("tiny", registry=registry, cache_dir=cache)


def test_a_missing_file_on_the_server_is_an_error_naming_the_url(installed, server):
    _, registry, cache = installed
    server.files.clear()
    with pytest.raises(OSError, match=f"Could not download .*{server.url}/files/tiny.*404"):
        pretrained.load("tiny", registry=registry, cache_dir=cache)
    assert cache_listing(cache) == []


def test_a_damaged_cached_file_is_downloaded_again_with_a_warning(installed, server):
    _, registry, cache = installed
    path = pretrained.fetch("tiny", registry=registry, cache_dir=cache)
    path.write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="does not match its sha256; downloading it again"):
        pretrained.load("tiny", registry=registry, cache_dir=cache)
    assert len(server.requests) == 2


def test_the_environment_chooses_the_url_and_the_cache(installed, server, tmp_path, monkeypatch):
    _, registry, _ = installed
    file = pretrained.entry("tiny", registry)["file"]
    server.files[f"mirror/{file}"] = server.files.pop(f"files/{file}")
    monkeypatch.setenv("ZOO_PRETRAINED_URL", server.url + "/mirror/{file}")
    monkeypatch.setenv("ZOO_PRETRAINED_CACHE", str(tmp_path / "env_cache"))
    assert pretrained.url("tiny", registry=registry) == f"{server.url}/mirror/{file}"
    pretrained.load("tiny", registry=registry)
    assert cache_listing(tmp_path / "env_cache") == [file]
    monkeypatch.setenv("ZOO_PRETRAINED_URL", "https://example.org/no-placeholder")
    with pytest.raises(ValueError, match=r"ZOO_PRETRAINED_URL: a URL template must .*\{file\}"):
        pretrained.url("tiny", registry=registry)


def test_without_a_url_a_missing_file_is_an_error_saying_how_to_set_one(installed, monkeypatch):
    _, registry, cache = installed
    data = json.loads(registry.read_text())
    del data["url_template"]
    registry.write_text(json.dumps(data))
    monkeypatch.delenv("ZOO_PRETRAINED_URL", raising=False)
    assert pretrained.url("tiny", registry=registry) is None
    with pytest.raises(FileNotFoundError, match="no URL to download it from.*ZOO_PRETRAINED_URL"):
        pretrained.load("tiny", registry=registry, cache_dir=cache)


def test_a_present_but_wrong_file_is_refused_not_downloaded_over(installed, server):
    _, registry, cache = installed
    file = pretrained.entry("tiny", registry)["file"]
    (registry.parent / file).write_bytes(b"modified in place")
    with pytest.raises(ValueError, match="corrupt or was modified"):
        pretrained.load("tiny", registry=registry, cache_dir=cache)
    assert server.requests == []


def test_publishing_keeps_the_registry_url_template(installed, tmp_path):
    _, registry, _ = installed
    template = json.loads(registry.read_text())["url_template"]
    shutil.copyfile(tmp_path / "trained.keras", tmp_path / "again.keras")
    pretrained.publish(tmp_path / "again.keras", "tiny_again", data_source="test", steps=0,
                       seed=1, registry=registry)
    assert json.loads(registry.read_text())["url_template"] == template
    registry.write_text(json.dumps({**json.loads(registry.read_text()), "url_template": 3}))
    with pytest.raises(ValueError, match="a URL template must be a string"):
        pretrained.available(registry)
