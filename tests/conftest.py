import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("CUGAN_OFFLINE", "1")  # never try to download pretrained weights in tests

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` run where CUDA is available and are skipped, with the reason, elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; torch sees none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    # Tiny test tensors run fastest on one thread, and stay fast when another process shares the CPU.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


from pathlib import Path  # noqa: E402

from hydra import compose, initialize_config_module  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from omegaconf import open_dict  # noqa: E402

CONFIG_MODULE = "cugan_lightning.conf"  # the configs as the package carries them (the repository's conf/)

# A generator and data small enough for a training step in well under a second on one CPU thread.
TINY = [
    "model/generator=cunet_small",
    "model.net_g.channels=[4,8,16]",
    "model.net_g.blocks=[1,1,1]",
    "data.patch_size=16",
    "data.batch_size=2",
    "data.num_workers=0",
    "data.val_crop=32",
    "data.eval_settings=[[0,30],[2,0]]",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
    "model.figure_setting=b0_n30",
]


def compose_config(overrides, output_dir, config_name="train"):
    """Compose the real app config as `python -m cugan_lightning` would, writing into `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(Path(output_dir) / "logs")
    return cfg


def make_generator(seed: int, scale: float = 0.07, **config):
    """A tiny CUnet (8/16/32 channels) with weights moved well away from the identity init, in eval mode."""
    from cugan_lightning.networks import CUnet

    torch.manual_seed(seed)
    net = CUnet(**{"channels": (8, 16, 32), **config})
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * scale)
    return net.eval()


def assert_one_line_error(err: str, phrase: str) -> None:
    """A command-line failure: one line on stderr, starting with 'error: ', containing ``phrase``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    assert phrase in lines[0], lines[0]


def fit_recording(cfg, keys, ckpt_path=None):
    """Build and fit ``cfg``; returns the trainer and, per training batch, the values of the logged ``keys``."""
    from lightning.pytorch.callbacks import Callback

    from cugan_lightning.apps.train import build

    class Recorder(Callback):
        def __init__(self):
            self.values = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.values.append(tuple(trainer.callback_metrics[k].clone() for k in keys))

    datamodule, model, trainer = build(cfg)
    recorder = Recorder()
    trainer.callbacks.append(recorder)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer, recorder.values


def released_state_dict(channels=(64, 128, 256), seed: int = 0, prefix: str = "module.") -> dict:
    """Random weights in the key layout of the authors' released 3-scale generator (2 blocks per side), written
    from their module structure (conv_stage*, CResBlocks_stage*_{left,right}, stage*_scale), ``module.``-prefixed
    as DataParallel saves them."""
    c, gen = channels, torch.Generator().manual_seed(seed)
    released: dict[str, torch.Tensor] = {}

    def add(name: str, weight_shape: tuple[int, ...], bias: int) -> None:
        released[f"{prefix}{name}.weight"] = torch.randn(weight_shape, generator=gen) * 0.05
        released[f"{prefix}{name}.bias"] = torch.randn(bias, generator=gen) * 0.05

    add("conv_stage1_left", (c[0], 3, 3, 3), c[0])
    add("conv_stage2_left", (c[1], c[0], 2, 2), c[1])
    add("conv_stage3_left", (c[2], c[1], 2, 2), c[2])
    add("conv_stage3_right", (c[2], c[1], 2, 2), c[1])  # ConvTranspose2d: (in, out, k, k)
    add("conv_stage2_right", (c[1], c[0], 2, 2), c[0])
    add("conv_stage1_right", (3, c[0], 3, 3), 3)
    for s in range(3):
        for side in ("left", "right"):
            for j in range(2):
                block = f"CResBlocks_stage{s + 1}_{side}.{j}"
                add(f"{block}.conv1", (c[s], c[s], 3, 3), c[s])
                add(f"{block}.conv2", (c[s], c[s], 3, 3), c[s])
                add(f"{block}.local_scale", (c[s], 2), c[s])
    add("stage3_scale", (c[1], 2), c[1])
    add("stage2_scale", (c[0], 2), c[0])
    add("stage1_scale", (3, 2), 3)
    return released
