"""The CUDA path (marked `gpu`: skipped, with the reason, where torch sees no CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import TINY_GAN, make_generator
from cugan_lightning.checkpoint import save_generator_checkpoint
from cugan_lightning.degradations import LevelCodec, gaussian_blur
from cugan_lightning.inference import load_restorer

pytestmark = pytest.mark.gpu


def test_blur_on_cuda_equals_the_cpu_blur():
    x = torch.rand(4, 3, 48, 40, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.0, 0.7, 2.0, 4.0])
    cpu = gaussian_blur(x, sigma)
    cuda = gaussian_blur(x.cuda(), sigma.cuda()).cpu()
    torch.testing.assert_close(cuda, cpu, rtol=0, atol=1e-5)
    assert torch.equal(cuda[0], x[0])  # sigma 0 is the identity on every device


def test_tiled_restoration_on_cuda_equals_the_cpu_one(tmp_path):
    path = save_generator_checkpoint(tmp_path / "g.ckpt", make_generator(0), LevelCodec())
    image = np.random.default_rng(0).integers(0, 256, (150, 130, 3), dtype=np.uint8)
    cpu = load_restorer(path, device="cpu").restore(image, blur=1.0, noise=20, tile=64)
    cuda = load_restorer(path, device="cuda").restore(image, blur=1.0, noise=20, tile=64)
    assert np.abs(cpu.astype(int) - cuda.astype(int)).max() <= 1  # 8-bit rounding of fp32 differences


def test_the_training_degradation_on_cuda_equals_the_cpu_one():
    """Blur, 8-bit quantisation and the device JPEG codec (the deterministic parts) agree within one 8-bit level
    (float32 blur sums in another order can cross a rounding boundary); the noise has the same statistics."""
    from cugan_lightning.degradations import degrade

    gt = torch.rand(6, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    blur = torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0, 4.0])
    quality = torch.tensor([0.0, 10.0, 30.0, 50.0, 75.0, 95.0])
    cpu = degrade(gt, blur, 0.0, jpeg_quality=quality, jpeg_codec="device")
    cuda = degrade(gt.cuda(), blur.cuda(), 0.0, jpeg_quality=quality.cuda(), jpeg_codec="device").cpu()
    assert (cuda - cpu).abs().max() <= 1 / 255 + 1e-6
    # compared as 8-bit levels: the float of one level (k / 255) can differ in its last bit between devices;
    # all but a few pixels are the same level
    levels_cpu, levels_cuda = (cpu * 255).round(), (cuda * 255).round()
    assert (levels_cuda != levels_cpu).float().mean() < 0.01
    noisy = degrade(torch.full((4, 3, 128, 128), 0.5, device="cuda"), 0.0, 30.0, quantize=False,
                    generator=torch.Generator(device="cuda").manual_seed(0))  # fmt: skip
    assert abs(float((noisy - 0.5).std()) * 255 - 30) < 0.5


@pytest.mark.parametrize(
    "options", [["trainer.precision=bf16-mixed"], ["model.channels_last=true", "model.compile=true"]]
)
def test_both_stages_run_on_cuda(tmp_path, options, monkeypatch):
    from pathlib import Path

    from conftest import TINY, compose_config
    from cugan_lightning.apps.train import train

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "helpers"))
    where = tmp_path / "device.txt"
    overrides = [*TINY, "trainer=gpu", "debug=fast_dev_run", *options,
                 "+callbacks.where._target_=killpoints.DeviceRecord", f"+callbacks.where.path={where}"]  # fmt: skip
    stage1 = train(compose_config(overrides, tmp_path / "s1"))
    assert np.isfinite(stage1["metrics"]["train/l_g_pix"])
    assert where.read_text() == "cuda"  # trained on the GPU, not on the CPU beside it
    where.unlink()
    start = save_generator_checkpoint(
        tmp_path / "s1.ckpt", make_generator(0, channels=(4, 8, 16), blocks=(1, 1, 1)), LevelCodec()
    )
    stage2 = train(compose_config([
        *overrides, *TINY_GAN, f"init.ckpt={start}", "data.patch_size=32", "model.log_figures=false",
    ], tmp_path / "s2"))  # fmt: skip
    assert np.isfinite(stage2["metrics"]["train/l_d_real"])
    assert where.read_text() == "cuda"


def test_the_discriminator_uses_synchronised_batchnorm_under_ddp(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    start = save_generator_checkpoint(
        tmp_path / "s1.ckpt", make_generator(0, channels=(4, 8, 16), blocks=(1, 1, 1)), LevelCodec()
    )
    helpers = Path(__file__).parent / "helpers"
    marker = tmp_path / "norms.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(helpers), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "cugan_lightning", "model/generator=cunet_small", "model.net_g.channels=[4,8,16]",
         "model.net_g.blocks=[1,1,1]", "data.batch_size=2", "data.num_workers=0", "data.val_crop=32",
         "data.eval_settings=[[0,30]]", *TINY_GAN, f"init.ckpt={start}", "data.patch_size=32", "model.log_figures=false",
         "trainer=ddp", "trainer.devices=1", "debug=fast_dev_run", "+callbacks.norms._target_=killpoints.NormTypes",
         f"+callbacks.norms.path={marker}", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = set(marker.read_text().split())
    assert "SyncBatchNorm" in names and "BatchNorm2d" not in names


def test_restore_command_on_cuda_with_tiles(tmp_path):
    import subprocess
    import sys

    from PIL import Image

    path = save_generator_checkpoint(tmp_path / "g.ckpt", make_generator(0), LevelCodec())
    image = np.random.default_rng(0).integers(0, 256, (150, 130, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    for device in ("cpu", "cuda"):
        proc = subprocess.run(
            [sys.executable, "-m", "cugan_lightning.apps.restore", str(tmp_path / "in.png"), "-o",
             str(tmp_path / f"{device}.png"), "--model", str(path), "--noise", "20", "--tile", "64",
             "--device", device],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    cpu = np.asarray(Image.open(tmp_path / "cpu.png")).astype(int)
    cuda = np.asarray(Image.open(tmp_path / "cuda.png")).astype(int)
    assert np.abs(cpu - cuda).max() <= 1


def test_onnx_runtime_cuda_provider_matches_pytorch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"onnxruntime has no CUDA provider here (providers: {ort.get_available_providers()})")
    from cugan_lightning.checkpoint import export_onnx
    from cugan_lightning.checkpoint.onnx import OnnxRestorer

    net = make_generator(0)
    path = export_onnx(net, LevelCodec(), tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CUDAExecutionProvider"])
    assert session.get_providers()[0] == "CUDAExecutionProvider"
    x, z = torch.rand(1, 3, 96, 80), torch.tensor([[0.25, 0.6]])
    with torch.no_grad():
        expected = OnnxRestorer(net).eval()(x, z).numpy()
    got = session.run(None, {"image": x.numpy(), "z": z.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-3
