"""The bad days: hostile data folders, runs killed mid-flight, files from strangers, bad values, full disks."""

from __future__ import annotations

import csv
import io
import logging
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, TINY_GAN, assert_one_line_error, compose_config, make_generator
from cugan_lightning.apps.train import build, train
from cugan_lightning.checkpoint import (
    CheckpointError,
    load_generator,
    read_checkpoint,
    save_generator_checkpoint,
)
from cugan_lightning.data import RestorationDataModule, load_embedded_image
from cugan_lightning.data.io import ImageReadError
from cugan_lightning.degradations import LevelCodec

HELPERS = Path(__file__).resolve().parent / "helpers"
IS_ROOT = os.geteuid() == 0


# ----------------------------------------------------------------------------------------------- hostile data


def png_bytes(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming width x height pixels, with (almost) no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def hostile_folder(folder: Path) -> dict[str, str | None]:
    """Good photographs beside every kind of bad file; returns file name -> the reason it is skipped (None:
    usable)."""
    folder.mkdir()
    photo = load_embedded_image("astronaut")
    expected: dict[str, str | None] = {}
    for i in range(3):
        (folder / f"good{i}.png").write_bytes(
            png_bytes(np.ascontiguousarray(photo[i * 100 : i * 100 + 96, :96]))
        )
        expected[f"good{i}.png"] = None
    crop = np.ascontiguousarray(photo[:80, :80])
    full_png, full_jpg = png_bytes(crop), io.BytesIO()
    Image.fromarray(crop).save(full_jpg, format="JPEG", quality=90)
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes(full_png[: len(full_png) // 2])
    (folder / "truncated.jpg").write_bytes(full_jpg.getvalue()[: len(full_jpg.getvalue()) // 2])
    (folder / "notes.jpg").write_text("not a photograph, a text file with the wrong name\n")
    (folder / "bomb.png").write_bytes(bomb_png())
    (folder / "link.png").symlink_to(folder / "nowhere.png")
    expected.update(
        {
            "empty.png": "empty file",
            "truncated.png": "truncated",
            "truncated.jpg": "truncated",
            "notes.jpg": "not an image",
            "bomb.png": "decompression bomb",
            "link.png": "broken symbolic link",
        }
    )
    usable = {
        "small.png": png_bytes(np.ascontiguousarray(photo[:16, :16])),
        "deep16.png": png_bytes((crop.astype(np.uint16) * 257)[..., 0]),
        "gray.png": png_bytes(np.ascontiguousarray(crop[..., 0])),
        "rgba.png": png_bytes(np.dstack([crop, np.full(crop.shape[:2], 200, np.uint8)])),
    }
    for name, data in usable.items():
        (folder / name).write_bytes(data)
        expected[name] = None
    extra = {
        "gray_alpha.png": Image.fromarray(crop[..., 0]).convert("LA"),
        "palette.png": Image.fromarray(crop).convert("P"),
    }
    for name, image in extra.items():
        image.save(folder / name)
        expected[name] = None
    Image.fromarray(crop).convert("CMYK").save(folder / "cmyk.jpg")
    expected["cmyk.jpg"] = None
    (folder / "locked.png").write_bytes(full_png)
    os.chmod(folder / "locked.png", 0)
    expected["locked.png"] = None if IS_ROOT else "permission denied"  # root reads mode-000 files anyway
    return expected


def datamodule(folder: Path, **kwargs) -> RestorationDataModule:
    return RestorationDataModule(train_dir=str(folder), patch_size=32, batch_size=2, num_workers=0, **kwargs)


@pytest.mark.parametrize("cache", [True, False])
def test_a_hostile_training_folder_is_checked_once_and_the_rest_trains(tmp_path, caplog, cache):
    expected = hostile_folder(tmp_path / "train")
    dm = datamodule(tmp_path / "train", cache_images=cache)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    source = dm.train_set.source
    assert sorted(f"{n}{p.suffix}" for n, p in zip(source.names, source.paths, strict=True)) == sorted(
        name for name, reason in expected.items() if reason is None
    )
    skipped = {path.name: reason for path, reason in source.skipped}
    assert sorted(skipped) == sorted(name for name, reason in expected.items() if reason is not None)
    for name, reason in skipped.items():
        assert expected[name] in reason, (name, reason)
        assert sum(name in r.getMessage() and "skipping" in r.getMessage() for r in caplog.records) == 1
    assert any(
        "small is 16x16, smaller than the 32-pixel patch: used whole" in r.getMessage()
        for r in caplog.records
    )
    batch = next(iter(dm.train_dataloader()))  # every usable layout becomes a (B, 3, P, P) patch batch
    assert batch["gt"].shape == (2, 3, 32, 32)


def test_on_bad_file_error_and_a_folder_of_nothing_usable(tmp_path):
    hostile_folder(tmp_path / "train")
    with pytest.raises(ImageReadError, match=r"unusable image file\(s\) in .*empty.png: empty file"):
        datamodule(tmp_path / "train", on_bad_file="error").setup("fit")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"")
    (tmp_path / "bad" / "b.jpg").write_text("text")
    with pytest.raises(ImageReadError, match="image folder '.*bad' holds no usable image: all 2"):
        datamodule(tmp_path / "bad").setup("fit")


def test_a_bad_evaluation_image_is_always_an_error(tmp_path):
    hostile_folder(tmp_path / "val")
    with pytest.raises(ImageReadError, match=r"unusable image file\(s\).*\(set `data.val_dir`\)"):
        RestorationDataModule(val_dir=str(tmp_path / "val"), patch_size=32, num_workers=0).setup("validate")
    from cugan_lightning.evaluation.runner import load_test_images

    with pytest.raises(
        ImageReadError, match="bomb.png: it claims more pixels than the .* decompression bomb"
    ):
        load_test_images(tmp_path / "val")


def test_the_app_trains_on_a_hostile_folder_and_stops_on_it_with_on_bad_file_error(tmp_path):
    hostile_folder(tmp_path / "train")
    result = train(
        compose_config([*TINY, f"data.train_dir={tmp_path / 'train'}", "debug=fast_dev_run"], tmp_path / "a")
    )
    assert np.isfinite(result["metrics"]["train/l_g_pix"])
    overrides = [
        *TINY,
        f"data.train_dir={tmp_path / 'train'}",
        "data.on_bad_file=error",
        f"hydra.run.dir={tmp_path}/b",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "cugan_lightning", *overrides], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2  # Lightning's own start-up lines come first; the error is one line, the last
    assert (
        proc.stderr.strip().splitlines()[-1].startswith("error: 6 unusable image file(s)")
        or "unusable image file(s)" in proc.stderr.strip().splitlines()[-1]
    )
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------------ killed runs

STAGE1 = [
    *TINY,
    "iterations=6",
    "data.batches_per_epoch=2",
    "logger=csv",
    "+logger.csv.flush_logs_every_n_steps=1",
]
STAGE1 += ["trainer.log_every_n_steps=1", "callbacks.model_checkpoint=null"]


def run_app(
    overrides: list[str], run_dir: Path, *, kill: tuple[str, int] | None = None
) -> subprocess.CompletedProcess:
    extra = []
    if kill is not None:
        extra = [
            "+callbacks.kill._target_=killpoints.KillAt",
            f"+callbacks.kill.moment={kill[0]}",
            f"+callbacks.kill.iteration={kill[1]}",
        ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HELPERS), os.environ.get("PYTHONPATH", "")])}
    # a W&B service started by an earlier in-process test would be shared, and still hold the killed run's id;
    # a scheduler's requeued job starts its own
    env.pop("WANDB_SERVICE", None)
    return subprocess.run(
        [sys.executable, "-m", "cugan_lightning", *overrides, *extra, f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


def logged_losses(run_dir: Path, key: str) -> dict[int, str]:
    with open(run_dir / "csv" / "metrics.csv") as handle:
        return {int(row["step"]): row[key] for row in csv.DictReader(handle) if row.get(key)}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The run of some overrides that nothing interrupts, made once for every kill moment: its folder."""
    made: dict[tuple[str, ...], Path] = {}

    def run(overrides: list[str]) -> Path:
        if tuple(overrides) not in made:
            logs = tmp_path_factory.mktemp("uninterrupted")
            reference = run_app([*overrides, f"paths.log_dir={logs}"], logs / "ref")
            assert reference.returncode == 0, reference.stderr[-2000:]
            made[tuple(overrides)] = logs / "ref"
        return made[tuple(overrides)]

    return run


def kill_and_resume(
    tmp_path: Path, overrides: list[str], kill: tuple[str, int], key: str, reference: Path
) -> None:
    logs = tmp_path / "logs"
    common = [*overrides, f"paths.log_dir={logs}"]
    killed_dir = logs / "train" / "runs" / "killed"
    killed = run_app(common, killed_dir, kill=kill)
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL
    for path in (killed_dir / "checkpoints").glob("*.ckpt"):
        read_checkpoint(path)  # every checkpoint file left behind loads
    before = logged_losses(killed_dir, key)
    resumed_dir = logs / "train" / "runs" / "resumed"
    resumed = run_app([*common, "ckpt_path=last"], resumed_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    leftovers = list((killed_dir / "checkpoints").glob(".last.ckpt.*.tmp"))
    assert bool(leftovers) == (kill[0] == "checkpoint")  # the cut write's temporary file, named at resume
    assert ("left by an interrupted checkpoint write" in resumed.stdout + resumed.stderr) == bool(leftovers)
    reference_losses = logged_losses(reference, key)
    after = logged_losses(resumed_dir, key)
    assert before and after and min(after) > 0  # the resumed log continues at the step it resumed from
    assert logged_losses(killed_dir, key) == before  # and the killed run's log is still there, untouched
    for step, value in {**before, **after}.items():
        assert value == reference_losses[step], (step, value, reference_losses[step])
    final = torch.load(resumed_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    expected = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert final.keys() == expected.keys() and all(torch.equal(final[k], expected[k]) for k in final)


@pytest.mark.slow
@pytest.mark.parametrize("kill", [("iteration", 2), ("checkpoint", 3), ("validation", 3)])
def test_stage1_killed_at_any_moment_resumes_bit_for_bit(tmp_path, kill, uninterrupted):
    kill_and_resume(tmp_path, STAGE1, kill, "train/l_g_pix", uninterrupted(STAGE1))


@pytest.mark.slow
@pytest.mark.parametrize("kill", [("iteration", 2), ("checkpoint", 3), ("validation", 3)])
def test_stage2_killed_resumes_bit_for_bit(tmp_path, kill, stage1_ckpt, uninterrupted):
    stage1 = stage1_ckpt
    overrides = [
        *STAGE1, *TINY_GAN,
        f"init.ckpt={stage1}", "data.patch_size=32", "model.log_figures=false",
    ]  # fmt: skip
    overrides = [o for o in overrides if o != "callbacks.model_checkpoint=null"] + [
        "callbacks=gan",
        "callbacks.model_checkpoint=null",
        "callbacks.rich_progress_bar=null",
    ]
    kill_and_resume(tmp_path, overrides, kill, "train/l_d_real", uninterrupted(overrides))


@pytest.mark.slow
def test_a_resumed_run_continues_its_wandb_run(tmp_path):
    logs = tmp_path / "logs"
    common = [*STAGE1, "logger=wandb", f"paths.log_dir={logs}"]
    killed_dir = logs / "train" / "runs" / "killed"
    assert run_app(common, killed_dir, kill=("iteration", 2)).returncode == -9
    (first,) = (killed_dir / "wandb").glob("offline-run-*")
    resumed_dir = logs / "train" / "runs" / "resumed"
    assert run_app([*common, "ckpt_path=last"], resumed_dir).returncode == 0
    (second,) = (resumed_dir / "wandb").glob("offline-run-*")
    assert first.name.rsplit("-", 1)[1] == second.name.rsplit("-", 1)[1]  # the same W&B run id


def test_ckpt_path_last_without_a_checkpoint_says_so(tmp_path):
    with pytest.raises(CheckpointError, match="ckpt_path=last: no last.ckpt of task 'train'"):
        build(compose_config([*TINY, "ckpt_path=last"], tmp_path))


# ----------------------------------------------------------------------------------------- untrusted files


class RunsACommand:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_a_checkpoint_that_would_run_a_command_is_refused_and_runs_nothing(tmp_path):
    canary = tmp_path / "canary"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "cugan": {"payload": RunsACommand(canary)}}, evil)
    with open(tmp_path / "evil.pkl", "wb") as handle:  # the same payload does run when unpickled blindly
        pickle.dump(RunsACommand(tmp_path / "proof"), handle)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "x.png")
    for command in (["restore", str(tmp_path / "x.png"), "-o", str(tmp_path / "o.png"), "--model", str(evil), "--noise", "5"],
                    ["export", "--model", str(evil), "-o", str(tmp_path / "o.safetensors")],
                    ["dni", "--model", str(evil), "--gan", str(evil), "--alpha", "0.5", "-o", str(tmp_path / "o.ckpt")]):  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", f"cugan_lightning.apps.{command[0]}", *command[1:]],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2
        assert_one_line_error(proc.stderr, "never loaded (a checkpoint is data, not code)")
    assert not canary.exists()


def test_malformed_files_each_get_one_line(tmp_path):
    good = save_generator_checkpoint(tmp_path / "good.ckpt", make_generator(0), LevelCodec())
    data = good.read_bytes()
    (tmp_path / "truncated.ckpt").write_bytes(data[: len(data) // 2])
    wrong = read_checkpoint(good)
    wrong["state_dict"]["net_g.tail.weight"] = torch.zeros(3, 8, 5, 5)
    torch.save(wrong, tmp_path / "shapes.ckpt")
    header = b'{"__metadata__": {"format": "cugan-lightning/1", "generator": "{not json"}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    (tmp_path / "metadata.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    (tmp_path / "huge.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    (tmp_path / "model.onnx").write_bytes(b"not a protobuf at all" * 10)
    cases = {
        "truncated.ckpt": "truncated or damaged checkpoint",
        "shapes.ckpt": "do not fit its own config",
        "metadata.safetensors": "metadata.safetensors",
        "huge.safetensors": "cannot read safetensors file",
    }
    for name, phrase in cases.items():
        with pytest.raises(CheckpointError) as info:
            load_generator(tmp_path / name)
        assert phrase in str(info.value) and name in str(info.value), str(info.value)
        assert "\n" not in str(info.value)
    from cugan_lightning.checkpoint import read_onnx_metadata

    pytest.importorskip("onnx")
    with pytest.raises(CheckpointError, match="cannot read ONNX file"):
        read_onnx_metadata(tmp_path / "model.onnx")


def test_a_config_file_with_python_tags_runs_nothing(tmp_path):
    canary = tmp_path / "canary"
    configs = tmp_path / "configs" / "experiment"
    configs.mkdir(parents=True)
    (configs / "evil.yaml").write_text(
        f"# @package _global_\ntask_name: !!python/object/apply:os.system ['touch {canary}']\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "cugan_lightning", f"hydra.searchpath=[file://{tmp_path / 'configs'}]", "experiment=evil", "debug=fast_dev_run"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "python/object" in proc.stderr
    assert not canary.exists()


# ---------------------------------------------------------------------------------------------- bad values

BAD_VALUES = [
    (["iterations=0"], "iterations must be positive"),
    (["data.batch_size=0"], "data.batch_size must be a whole number >= 1"),
    (["data.patch_size=-8"], "data.patch_size must be a whole number >= 4"),
    (["data.patch_size=4096"], "data.patch_size 4096 is larger than every training image"),
    (["data.val_crop=2"], "data.val_crop must be null or a whole number >= 4"),
    (["degradation.codec.max_levels=[2.0,50.0]"], "blur level 4 is outside 0..2"),
    (["data.eval_settings=[[0,70]]"], "noise level 70 is outside 0..50"),
    (["data.on_bad_file=maybe"], "data.on_bad_file must be 'skip' or 'error'"),
    (
        [
            "model.update_order=sideways",
            "model=cugan",
            "init.ckpt=null",
            "model.perceptual.weights=null",
            "model.val_metrics=[]",
        ],
        "model.update_order must be",
    ),
]


@pytest.mark.parametrize(("overrides", "phrase"), BAD_VALUES, ids=[o[0] for o, _ in BAD_VALUES])
def test_bad_values_are_named_before_any_work(tmp_path, overrides, phrase):
    cfg = compose_config([*TINY, *overrides], tmp_path)
    with pytest.raises(ValueError) as info:
        build(cfg)  # the data are checked here, before the model and the trainer exist
    assert phrase in str(info.value), str(info.value)


CLI_BAD_VALUES = [
    ("restore", ["--noise", "nan"], "--noise must be a finite number, got nan"),
    ("restore", ["--noise", "70"], "noise level 70 is outside 0..50"),
    ("restore", ["--blur", "-1"], "blur level -1 is outside 0..4"),
    ("restore", ["--tile", "0"], "tile size must be an integer >= 16, got 0"),
    ("restore", ["--jpeg", "40"], "this model has no jpeg slider"),
    ("dni", ["--alpha", "1.5"], "alpha 1.5 is outside [0, 1]"),
    ("dni", ["--alpha", "nan"], "alpha must be a number in [0, 1]"),
]


@pytest.mark.parametrize(
    ("command", "argv", "phrase"), CLI_BAD_VALUES, ids=[" ".join(c[1]) for c in CLI_BAD_VALUES]
)
def test_bad_slider_values_are_one_line_before_any_work(tmp_path, capsys, command, argv, phrase):
    from cugan_lightning.apps import dni, restore

    ckpt = save_generator_checkpoint(tmp_path / "g.ckpt", make_generator(0), LevelCodec())
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "x.png")
    out = tmp_path / "out"
    if command == "restore":
        code = restore.main(
            [str(tmp_path / "x.png"), "-o", str(out), "--model", str(ckpt), "--noise", "5", *argv]
        )
    else:
        code = dni.main(["--model", str(ckpt), "--gan", str(ckpt), "-o", str(out), *argv])
    assert code == 2
    assert_one_line_error(capsys.readouterr().err, phrase)
    assert not out.exists()  # nothing was written


# --------------------------------------------------------------------------------------------------- disks


def test_an_unwritable_run_folder_is_found_before_training(tmp_path):
    with pytest.raises(OSError, match="cannot write to the run folder"):
        build(compose_config(TINY, Path("/proc/cugan-cannot-write-here")))


@pytest.mark.slow
def test_a_full_disk_is_found_before_training_with_one_line(tmp_path):
    # RLIMIT_FSIZE makes every write past 256 KiB fail, as a full disk does: the 1 MiB probe trips on it
    code = (
        "import resource, sys, runpy; resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 18, 1 << 18)); "
        "sys.argv = ['cugan_lightning', *sys.argv[1:]]; runpy.run_module('cugan_lightning', run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *TINY, f"hydra.run.dir={tmp_path}/run"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "cannot write to the run folder")
    assert not (tmp_path / "run" / "checkpoints").exists()
