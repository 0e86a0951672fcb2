"""The model zoo: the shipped models load and restore with no training, every entry is consistent with its
file, and a downloadable entry is fetched once over HTTP (a loopback server here), verified, cached, and named
in one line when it cannot be fetched or does not match."""

from __future__ import annotations

import hashlib
import http.server
import socketserver
import threading

import numpy as np
import pytest
import torch

from conftest import assert_one_line_error
from cugan_lightning import zoo
from cugan_lightning.apps.restore import main as restore_main
from cugan_lightning.checkpoint import read_generator_file
from cugan_lightning.estimation import load_estimator
from cugan_lightning.inference import load_restorer


def test_every_entry_is_its_file_with_its_codec():
    for name, entry in zoo.entries().items():
        path = zoo.resolve(f"zoo:{name}")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
        assert path.stat().st_size < 8 * 2**20  # a few MB each
        if entry.extra.get("kind") == "estimator":  # a level estimator: its own file layout
            estimator = load_estimator(path)
            assert estimator.codec.to_dict() == entry.codec
            assert all(
                v.dtype == torch.float16 for v in torch.load(path, weights_only=True)["state_dict"].values()
            )
            continue
        metadata = read_generator_file(path, tensors=False).metadata
        assert metadata["codec"] == entry.codec and metadata.get("stored_dtype") == "float16"
        linked = entry.extra.get("estimator")
        if linked is not None:  # the estimator a model names is in the zoo, for the same codec
            assert zoo.entries()[linked].codec == entry.codec
    assert zoo.default_model() in zoo.entries()
    assert zoo.entries()[zoo.default_model()].extra.get("kind") != "estimator"


def test_the_default_model_restores_a_photo_with_no_training(tmp_path, capsys):
    rng = np.random.default_rng(0)
    clean = np.clip(np.linspace(0, 255, 48)[None, :, None] + np.zeros((40, 48, 3)), 0, 255)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).round().astype(np.uint8)
    from PIL import Image

    Image.fromarray(noisy).save(tmp_path / "photo.png")
    assert restore_main([str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png"), "--noise", "25"]) == 0
    assert f"model: zoo:{zoo.default_model()} (the default" in capsys.readouterr().out
    restored = np.asarray(Image.open(tmp_path / "out.png")).astype(float)
    error_before = np.abs(noisy.astype(float) - clean).mean()
    assert np.abs(restored - clean).mean() < 0.5 * error_before  # it removes most of the noise
    restorer = load_restorer("zoo:")  # zoo: alone is the default model too
    assert tuple(restorer.codec.names) == ("blur", "noise")


def test_an_unknown_or_damaged_model_is_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(zoo.ZooError, match="no zoo model 'nothing'; the zoo has"):
        zoo.resolve("zoo:nothing")
    shipped = zoo.resolve("zoo:")
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(shipped.read_bytes()[:-10] + b"0123456789")
    entry = zoo.ZooEntry(
        name="damaged", sha256=zoo.entries()[zoo.default_model()].sha256, codec={}, file=str(damaged)
    )
    monkeypatch.setattr(zoo, "_registry", lambda: ("damaged", {"damaged": entry}))
    with pytest.raises(zoo.ZooError, match="is damaged or another one"):
        zoo.resolve("zoo:damaged")


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        CountingHandler.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "remote.safetensors").write_bytes(zoo.resolve("zoo:").read_bytes())
    handler = lambda *a, **k: CountingHandler(*a, directory=str(folder), **k)  # noqa: E731
    httpd = socketserver.TCPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    CountingHandler.requests = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def remote_entry(url: str, sha256: str) -> zoo.ZooEntry:
    return zoo.ZooEntry(name="remote", sha256=sha256, codec={}, url=f"{url}/remote.safetensors")


def test_a_downloadable_model_is_fetched_once_verified_and_cached(server, tmp_path, monkeypatch):
    monkeypatch.setenv("CUGAN_ZOO_CACHE", str(tmp_path / "cache"))
    sha = zoo.entries()[zoo.default_model()].sha256
    monkeypatch.setattr(zoo, "_registry", lambda: ("remote", {"remote": remote_entry(server, sha)}))
    first = zoo.resolve("zoo:remote")
    assert first.parent == tmp_path / "cache" and hashlib.sha256(first.read_bytes()).hexdigest() == sha
    second = zoo.resolve("zoo:remote")
    assert second == first and CountingHandler.requests == ["/remote.safetensors"]  # fetched once
    assert list((tmp_path / "cache").iterdir()) == [first]  # no partial file left
    restorer = load_restorer("zoo:remote")
    assert tuple(restorer.codec.names) == ("blur", "noise")


def test_a_download_that_does_not_match_keeps_nothing(server, tmp_path, monkeypatch):
    monkeypatch.setenv("CUGAN_ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(zoo, "_registry", lambda: ("remote", {"remote": remote_entry(server, "0" * 64)}))
    with pytest.raises(zoo.ZooError, match="not the registered 0000000000000000...; nothing was kept"):
        zoo.resolve("zoo:remote")
    assert not any((tmp_path / "cache").iterdir())


def test_offline_the_tool_says_where_to_put_the_file_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CUGAN_ZOO_CACHE", str(tmp_path / "cache"))
    entry = zoo.ZooEntry(name="far", sha256="a" * 64, codec={}, url="http://127.0.0.1:9/far.safetensors")
    monkeypatch.setattr(zoo, "_registry", lambda: ("far", {"far": entry}))
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "in.png")
    code = restore_main(
        [str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--model", "zoo:far", "--noise", "5"]
    )
    assert code == 2
    assert_one_line_error(
        capsys.readouterr().err, "cannot be downloaded from http://127.0.0.1:9/far.safetensors"
    )
    assert not (tmp_path / "out.png").exists()
