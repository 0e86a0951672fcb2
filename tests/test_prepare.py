"""``python -m cugan_lightning.data.prepare`` against a local HTTP server on 127.0.0.1 serving small synthetic
archives: download, resume, checksum, integrity, sub-images, the final layout, and the re-run that returns."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error
from cugan_lightning.apps.prepare import main
from cugan_lightning.data.prepare import DATASETS, Archive, DatasetSpec, subimage_starts


class Server:
    """Serves ``files`` by name, honouring ``Range`` requests; ``cut_after`` bytes then drops a connection."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.cut_after, self.requests = files, None, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802 - the http.server API
                name = self.path.lstrip("/")
                owner.requests.append((name, self.headers.get("Range")))
                if name not in owner.files:
                    self.send_error(404)
                    return
                data, start = owner.files[name], 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    self.send_response(206)
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if owner.cut_after is not None:
                    self.wfile.write(body[: owner.cut_after])
                    owner.cut_after = None
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops mid-file
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def png(seed: int, size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def synthetic(monkeypatch):
    """Small stand-ins for DIV2K and CBSD68 under their real file names; the table points at them."""
    train = archive({f"DIV2K_train_HR/{i:04d}.png": png(i, (600, 500)) for i in range(1, 4)})
    valid = archive({f"DIV2K_valid_HR/{i:04d}.png": png(10 + i, (64, 64)) for i in range(1, 3)})
    cbsd = archive(
        {f"CBSD68-dataset-master/CBSD68/original_png/{i:04d}.png": png(20 + i, (32, 32)) for i in range(4)}
    )
    files = {"DIV2K_train_HR.zip": train, "DIV2K_valid_HR.zip": valid, "CBSD68-dataset-master.zip": cbsd}
    server = Server(files)
    sha = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    div2k = DATASETS["div2k"]
    monkeypatch.setitem(
        DATASETS,
        "div2k",
        replace(
            div2k,
            archives=tuple(
                replace(a, sha256=sha[a.file_name], size=len(files[a.file_name])) for a in div2k.archives
            ),
            folders={"DIV2K_train_HR": ("DIV2K_train_HR", 3), "DIV2K_valid_HR": ("DIV2K_valid_HR", 2)},
        ),
    )
    monkeypatch.setitem(
        DATASETS, "cbsd68", replace(DATASETS["cbsd68"], folders={"original_png": ("original_png", 4)})
    )
    yield server
    server.httpd.shutdown()


def run(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prepare_lays_out_div2k_with_sub_images_and_returns_at_once_the_second_time(
    synthetic, tmp_path, capsys
):
    code, out, err = run(["div2k", "--root", str(tmp_path), "--mirror", synthetic.url], capsys)
    assert code == 0, err
    folder = tmp_path / "DIV2K"
    assert sorted(p.name for p in (folder / "DIV2K_train_HR").iterdir()) == [
        "0001.png",
        "0002.png",
        "0003.png",
    ]
    assert len(list((folder / "DIV2K_valid_HR").iterdir())) == 2
    # 600x500 images in 480-pixel crops every 240: rows at 0 and 120, columns at 0 and 20 -> 4 per image
    assert subimage_starts(600, 480, 240) == [0, 120] and subimage_starts(500, 480, 240) == [0, 20]
    subs = sorted((folder / "DIV2K_train_HR_sub").iterdir())
    assert len(subs) == 12 and Image.open(subs[0]).size == (480, 480)
    original = np.asarray(Image.open(folder / "DIV2K_train_HR" / "0001.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(subs[3])), original[120:600, 20:500])
    assert "SHA-256 matches the published value" in out
    record = json.loads((folder / ".prepared.json").read_text())
    assert record["subimages"] == {"DIV2K_train_HR_sub": 12}
    assert not list(tmp_path.glob(".DIV2K.staging-*"))

    requests = len(synthetic.requests)
    code, out, _ = run(["div2k", "--root", str(tmp_path), "--mirror", synthetic.url], capsys)
    assert code == 0 and "already prepared" in out and len(synthetic.requests) == requests


def test_an_interrupted_download_resumes_where_it_stopped(synthetic, tmp_path, capsys):
    synthetic.cut_after = 5000
    code, _, err = run(["cbsd68", "--root", str(tmp_path), "--mirror", synthetic.url], capsys)
    assert code == 2
    assert_one_line_error(err, "run the same command again to resume")
    assert not (tmp_path / "CBSD68").exists()
    part = tmp_path / ".downloads" / "CBSD68-dataset-master.zip.part"
    assert part.stat().st_size == 5000
    code, out, err = run(["cbsd68", "--root", str(tmp_path), "--mirror", synthetic.url], capsys)
    assert code == 0, err
    assert synthetic.requests[-1] == ("CBSD68-dataset-master.zip", "bytes=5000-")
    assert "no published checksum, so every member of the archive was read back" in out
    assert len(list((tmp_path / "CBSD68" / "original_png").iterdir())) == 4


def test_a_corrupted_archive_leaves_no_folder_and_says_what_to_do(synthetic, tmp_path, capsys):
    data = bytearray(synthetic.files["DIV2K_valid_HR.zip"])
    data[100] ^= 0xFF
    synthetic.files["DIV2K_valid_HR.zip"] = bytes(data)
    code, _, err = run(["div2k", "--root", str(tmp_path), "--mirror", synthetic.url], capsys)
    assert code == 2
    assert_one_line_error(err, "does not match the published")
    assert "the file was deleted: run the same command again" in err
    assert not (tmp_path / "DIV2K").exists() and not (tmp_path / ".downloads" / "DIV2K_valid_HR.zip").exists()


def test_without_a_published_checksum_a_broken_archive_is_caught_by_reading_it(synthetic, tmp_path, capsys):
    synthetic.files["CBSD68-dataset-master.zip"] = synthetic.files["CBSD68-dataset-master.zip"][:-200]
    code, _, err = run(["cbsd68", "--root", str(tmp_path), "--mirror", synthetic.url], capsys)
    assert code == 2
    assert_one_line_error(err, "not a readable archive")
    assert not (tmp_path / "CBSD68").exists()


def test_a_wrong_image_count_and_a_foreign_folder_are_refused(synthetic, tmp_path, capsys, monkeypatch):
    (tmp_path / "CBSD68").mkdir()
    code, _, err = run(["cbsd68", "--root", str(tmp_path), "--mirror", synthetic.url], capsys)
    assert code == 2 and "was not made by this tool" in err
    (tmp_path / "CBSD68").rmdir()
    monkeypatch.setitem(
        DATASETS, "cbsd68", replace(DATASETS["cbsd68"], folders={"original_png": ("original_png", 68)})
    )
    code, _, err = run(["cbsd68", "--root", str(tmp_path), "--mirror", synthetic.url], capsys)
    assert code == 2 and "no single folder 'original_png' with 68 images" in err
    assert not (tmp_path / "CBSD68").exists() and not list(tmp_path.glob(".CBSD68.staging-*"))


def test_the_table_holds_only_well_formed_published_values():
    for spec in DATASETS.values():
        assert isinstance(spec, DatasetSpec) and spec.archives
        for item in spec.archives:
            assert isinstance(item, Archive) and item.url.startswith("https://")
            assert item.sha256 == "" or (len(item.sha256) == 64 and int(item.sha256, 16) >= 0)
            assert (item.size is None) == (item.sha256 == "")  # both come from the same published line
    assert Path(DATASETS["div2k"].archives[0].url).name == "DIV2K_train_HR.zip"


def gray_png(seed: int, size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_gray_sets_come_from_one_dncnn_archive_fetched_once_and_stay_gray(tmp_path, capsys, monkeypatch):
    """bsd68, train400 and set12 are three folders of the same DnCNN-master.zip (the one live1 reads)."""
    assert {name: DATASETS[name].folders[""] for name in ("bsd68", "train400", "set12")} == {
        "bsd68": ("BSD68", 68),
        "train400": ("Train400", 400),
        "set12": ("testsets/Set12", 12),
    }
    assert {DATASETS[name].archives for name in ("bsd68", "train400", "set12")} == {
        DATASETS["live1"].archives
    }
    top = "DnCNN-master"
    members = {f"{top}/testsets/BSD68/test{i:03d}.png": gray_png(i, (32, 48)) for i in range(1, 4)}
    members |= {f"{top}/testsets/Set12/{i:02d}.png": gray_png(50 + i, (40, 40)) for i in range(1, 3)}
    members |= {
        f"{top}/TrainingCodes/v1/testsets/Set12/{i:02d}.png": gray_png(50 + i, (40, 40)) for i in (1, 2)
    }
    members |= {f"{top}/testsets/LIVE1/x{i}.png": png(70 + i, (16, 16)) for i in range(2)}
    members |= {
        f"{top}/TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400/test_{i:03d}.png": gray_png(
            100 + i, (18, 18)
        )
        for i in range(1, 6)
    }
    server = Server({"DnCNN-master.zip": archive(members)})
    for name, inside, count in (
        ("bsd68", "BSD68", 3),
        ("train400", "Train400", 5),
        ("set12", "testsets/Set12", 2),
    ):
        monkeypatch.setitem(DATASETS, name, replace(DATASETS[name], folders={"": (inside, count)}))
    try:
        code, out, err = run(
            ["bsd68", "train400", "set12", "--root", str(tmp_path), "--mirror", server.url], capsys
        )
    finally:
        server.httpd.shutdown()
    assert code == 0, err
    assert [name for name, _ in server.requests] == ["DnCNN-master.zip"]  # downloaded once, read three times
    assert sorted(p.name for p in (tmp_path / "BSD68").glob("*.png")) == [
        f"test{i:03d}.png" for i in (1, 2, 3)
    ]
    assert len(list((tmp_path / "Train400").glob("*.png"))) == 5
    assert len(list((tmp_path / "Set12").glob("*.png"))) == 2
    image = Image.open(tmp_path / "BSD68" / "test002.png")
    assert image.mode == "L" and image.size == (48, 32)
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(io.BytesIO(gray_png(2, (32, 48))))))
