"""The CUDA path (marked `gpu`: skipped, with the reason, where torch sees no CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import make_generator
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
