"""Data: image reading, training patches, the device-side degradation and the fixed evaluation grid."""

import numpy as np
import pytest
import torch
from PIL import Image

from cugan_lightning.data import (
    EvalGridDataset,
    ImageReadError,
    ImageSource,
    IterationBatchSampler,
    RestorationDataModule,
    TrainPatchDataset,
    datasets,
    list_images,
    read_image,
)
from cugan_lightning.degradations import LevelCodec, LevelSampler


@pytest.fixture
def image_folder(tmp_path):
    rng = np.random.default_rng(0)
    # smooth content, so that JPEG stays close to the original
    yy, xx = np.mgrid[0:40, 0:50]
    rgb = np.stack([yy * 6, xx * 5, (yy + xx) * 2], axis=2).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.bmp")
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=95)
    Image.fromarray(rgb).save(tmp_path / "rgb.tiff")
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "gray.png")
    rgba = np.concatenate([rgb, np.full((40, 50, 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    gray16 = (rng.integers(0, 65536, (40, 50))).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    Image.fromarray(rgb).save(tmp_path / "sub" / "ignored.png")
    return tmp_path, rgb, gray16


def test_list_images_keeps_top_level_images_only(image_folder):
    folder, _, _ = image_folder
    names = [p.name for p in list_images(folder)]
    assert names == sorted(
        ["rgb.png", "rgb.bmp", "rgb.jpg", "rgb.tiff", "gray.png", "rgba.png", "gray16.png"]
    )


def test_read_image_formats_to_float_rgb(image_folder):
    folder, rgb, gray16 = image_folder
    expected = rgb.astype(np.float32) / 255
    for name in ("rgb.png", "rgb.bmp", "rgb.tiff"):
        np.testing.assert_array_equal(read_image(folder / name), expected)
    assert np.abs(read_image(folder / "rgb.jpg") - expected).mean() < 0.03
    gray = read_image(folder / "gray.png")
    assert gray.shape == (40, 50, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    np.testing.assert_array_equal(read_image(folder / "rgba.png"), expected)  # alpha dropped
    g16 = read_image(folder / "gray16.png")
    np.testing.assert_allclose(g16[..., 1], gray16.astype(np.float32) / 65535, atol=1e-7)


def test_missing_and_empty_folders_name_the_config_key(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"does not exist \(set `data.train_dir`\)"):
        list_images(tmp_path / "nope", config_key="data.train_dir")
    with pytest.raises(FileNotFoundError, match="holds no images"):
        list_images(tmp_path, config_key="data.val_dir")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match="broken.png"):
        read_image(tmp_path / "broken.png")


def test_datamodule_missing_train_folder(tmp_path):
    dm = RestorationDataModule(train_dir=str(tmp_path / "DIV2K_train_HR"))
    with pytest.raises(FileNotFoundError, match="data.train_dir"):
        dm.setup("fit")


def _source():
    rng = np.random.default_rng(1)
    return ImageSource(
        arrays=[(f"im{i}", rng.integers(0, 256, (30 + i, 41, 3), dtype=np.uint8)) for i in range(3)]
    )


def test_train_patches_depend_only_on_seed_and_index():
    a, b = TrainPatchDataset(_source(), 16, seed=3), TrainPatchDataset(_source(), 16, seed=3)
    c = TrainPatchDataset(_source(), 16, seed=4)
    for index in (0, 7, 10**9):
        x = a[index]["gt"]
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32
        assert x.min() >= 0 and x.max() <= 1
        assert torch.equal(x, b[index]["gt"])
    assert not all(torch.equal(a[i]["gt"], c[i]["gt"]) for i in range(4))
    assert not torch.equal(a[0]["gt"], a[1]["gt"])


def test_patches_larger_than_the_image_are_mirrored():
    source = ImageSource(arrays=[("small", np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3))])
    assert TrainPatchDataset(source, 16)[0]["gt"].shape == (3, 16, 16)


def test_batch_sampler_starts_at_the_counter_and_shards_ranks():
    seen = {"k": 5}
    rank0 = list(IterationBatchSampler(2, 3, lambda: seen["k"], rank=0, world_size=2))
    rank1 = list(IterationBatchSampler(2, 3, lambda: seen["k"], rank=1, world_size=2))
    assert rank0 == [[20, 21], [24, 25], [28, 29]]
    assert rank1 == [[22, 23], [26, 27], [30, 31]]
    single = list(IterationBatchSampler(2, 2, lambda: 0))
    assert single == [[0, 1], [2, 3]]


def _datamodule(**kwargs):
    defaults = dict(patch_size=16, batch_size=4, batches_per_epoch=3, num_workers=0, val_crop=32)
    defaults.update(kwargs)
    dm = RestorationDataModule(**defaults)
    dm.setup("fit")
    return dm


def test_train_batch_is_degraded_after_transfer():
    dm = _datamodule()
    raw = next(iter(dm.train_dataloader()))
    assert set(raw) == {"gt"} and raw["gt"].shape == (4, 3, 16, 16)
    batch = dm.on_after_batch_transfer(raw, 0)
    assert set(batch) == {"lq", "gt", "z", "blur_sigma", "noise_sigma"}
    assert batch["lq"].shape == batch["gt"].shape
    assert batch["z"].shape == (4, 2)
    expected_z = torch.stack([batch["blur_sigma"] / 4, batch["noise_sigma"] / 50], dim=1)
    torch.testing.assert_close(batch["z"], expected_z)
    lq = batch["lq"]
    assert lq.min() >= 0 and lq.max() <= 1
    torch.testing.assert_close(lq * 255, (lq * 255).round(), atol=1e-4, rtol=0)
    assert dm.train_batches_seen == 1


def test_train_degradation_is_a_function_of_seed_and_batch_index():
    dm1, dm2 = _datamodule(seed=5), _datamodule(seed=5)
    gt = torch.rand(4, 3, 16, 16)
    a, b = dm1.degrade_train_batch(gt, 7), dm2.degrade_train_batch(gt, 7)
    for key in a:
        assert torch.equal(a[key], b[key])
    c = dm1.degrade_train_batch(gt, 8)
    assert not torch.equal(a["lq"], c["lq"])
    d = dm1.degrade_train_batch(gt, 7, rank=1)
    assert not torch.equal(a["lq"], d["lq"])


def test_state_dict_restores_the_batch_counter():
    dm = _datamodule()
    loader = iter(dm.train_dataloader())
    for _ in range(2):
        dm.on_after_batch_transfer(next(loader), 0)
    third = dm.on_after_batch_transfer(next(loader), 0)
    resumed = _datamodule()
    resumed.load_state_dict({"train_batches_seen": 2})
    again = resumed.on_after_batch_transfer(next(iter(resumed.train_dataloader())), 0)
    for key in third:
        assert torch.equal(third[key], again[key])


def test_validation_grid_is_identical_across_runs_and_batches_hold_levels():
    settings = [(0, 30), (2, 0), (1, 15)]
    dm1, dm2 = _datamodule(eval_settings=settings), _datamodule(eval_settings=settings)
    assert len(dm1.val_set) == 2 * len(settings)  # two embedded validation photographs
    batches1, batches2 = list(dm1.val_dataloader()), list(dm2.val_dataloader())
    for b1, b2 in zip(batches1, batches2, strict=True):
        assert torch.equal(b1["lq"], b2["lq"]) and torch.equal(b1["gt"], b2["gt"])
        assert dm1.on_after_batch_transfer(b1, 0) is b1  # evaluation batches pass through untouched
    first = batches1[0]
    assert first["setting"] == ["b0_n30"]
    assert first["gt"].shape[-2:] == (32, 32)
    torch.testing.assert_close(first["z"], torch.tensor([[0.0, 0.6]]))
    noise_only = first["lq"] - first["gt"]
    assert 20 / 255 < noise_only.std() < 40 / 255


def test_each_rank_evaluates_its_own_share_of_the_grid(monkeypatch):
    settings = [(0, 30), (2, 0), (1, 15)]
    seen = []
    for rank in range(4):
        dm = _datamodule(eval_settings=settings)
        monkeypatch.setattr(dm, "_rank_world", lambda rank=rank: (rank, 4))
        seen.append([(b["image"][0], b["setting"][0]) for b in dm.val_dataloader()])
    everything = [
        (b["image"][0], b["setting"][0]) for b in _datamodule(eval_settings=settings).val_dataloader()
    ]
    assert [len(share) for share in seen] == [2, 2, 1, 1]  # 6 items over 4 ranks, none padded or repeated
    assert sorted(item for share in seen for item in share) == sorted(everything)


def test_eval_grid_rejects_levels_outside_the_codec():
    with pytest.raises(ValueError, match="noise"):
        EvalGridDataset(_source(), [(0, 60)], LevelCodec())


def test_datamodule_rejects_a_sampler_beyond_the_codec():
    with pytest.raises(ValueError, match="blur"):
        RestorationDataModule(sampler=LevelSampler(blur_max=5.0))


def test_folder_images_are_decoded_once_and_shared(image_folder, monkeypatch):
    folder, _, _ = image_folder
    source, uncached = ImageSource(folder), ImageSource(folder, cache=False)
    calls = []
    real = datasets.read_image_raw
    monkeypatch.setattr(datasets, "read_image_raw", lambda path: calls.append(path) or real(path))
    source.preload(threads=2)
    assert sorted(calls) == sorted(source.paths)  # the start-up check decodes each file once...
    for index in range(len(source)):
        assert source.get(index).shape[2] == 3
    assert len(calls) == len(source)  # ...and training reuses those decodes
    uncached.preload()
    assert uncached._cache == {} and uncached.sizes == source.sizes  # checked, sizes known, nothing kept
    calls.clear()
    uncached.get(0)
    assert len(calls) == 1  # without the cache every patch reads its file again


def test_sixteen_bit_colour_files_keep_all_sixteen_bits_for_training(tmp_path):
    from cugan_lightning.data.io import write_image as write_output_image

    rgb16 = np.random.default_rng(3).integers(0, 65536, (9, 11, 3)).astype(np.uint16)
    for name in ("rgb16.png", "rgb16.tif"):
        write_output_image(rgb16, tmp_path / name)
        np.testing.assert_array_equal(read_image(tmp_path / name), rgb16.astype(np.float32) / 65535)
