import os
import sys

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

ROOT = Path(__file__).resolve().parents[1]
"""The repository."""
BENCHMARKS = ROOT / "benchmarks"
"""The benchmark scripts; importable (the web tests start the app with the load benchmark's helpers)."""
sys.path.insert(0, str(BENCHMARKS))

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


TINY_GAN = [
    "model=cugan",
    "model.net_d.base_channels=4",
    "model.perceptual.weights=null",  # a random-weight VGG19: tests only, never a reported number
    "model.val_metrics=[]",
]
"""Stage 2 at test size: add to TINY (with init.ckpt=... of a tiny stage-1 file)."""

CODEC3_NAMES = ("blur", "noise", "jpeg")
CODEC4_NAMES = ("blur", "noise", "jpeg", "poisson")


def make_generator(seed: int, scale: float = 0.07, **config):
    """A tiny CUnet (8/16/32 channels) with weights moved well away from the identity init, in eval mode."""
    from cugan_lightning.networks import CUnet

    torch.manual_seed(seed)
    net = CUnet(**{"channels": (8, 16, 32), **config})
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * scale)
    return net.eval()


@pytest.fixture(scope="session")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    """Tiny generator files (8/16/32 channels, weights away from the identity) shared by the tests: ``mse`` and
    ``gan`` (stage 1 and 2 of the two-factor codec), ``mse3`` / ``gan3`` (blur, noise and JPEG) and ``mse4``
    (blur, noise, JPEG and Poisson noise)."""
    from cugan_lightning.checkpoint import save_generator_checkpoint
    from cugan_lightning.degradations import LevelCodec

    folder = tmp_path_factory.mktemp("ckpts")
    codec3 = LevelCodec(names=CODEC3_NAMES, max_levels=(4.0, 50.0, 92.0))
    codec4 = LevelCodec(names=CODEC4_NAMES, max_levels=(4.0, 50.0, 92.0, 25.0))
    files = {
        "mse": (make_generator(0), LevelCodec(), "cunet"),
        "gan": (make_generator(1), LevelCodec(), "cugan"),
        "mse3": (make_generator(0, cond_dim=3), codec3, "cunet"),
        "gan3": (make_generator(1, cond_dim=3), codec3, "cugan"),
        "mse4": (make_generator(2, cond_dim=4), codec4, "cunet"),
    }
    return {
        name: save_generator_checkpoint(folder / f"{name}.ckpt", net, codec, kind=kind)
        for name, (net, codec, kind) in files.items()
    }


@pytest.fixture
def stage1_ckpt(tmp_path):
    """A stage-1 file of the TINY generator (4/8/16 channels, one block per side), the start of a TINY_GAN run."""
    from cugan_lightning.checkpoint import save_generator_checkpoint
    from cugan_lightning.degradations import LevelCodec
    from cugan_lightning.networks import CUnet

    torch.manual_seed(0)
    net = CUnet(channels=(4, 8, 16), blocks=(1, 1, 1))
    return save_generator_checkpoint(tmp_path / "stage1.ckpt", net, LevelCodec())


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


RELEASED_LAYOUT = Path(__file__).parent / "data" / "released_cunet_keys.json"
"""The key names and shapes of the authors' released generator, read off their published model code (the file
names its repository, commit and files)."""


def released_state_dict(channels=(64, 128, 256), seed: int = 0, prefix: str = "module.") -> dict:
    """Random weights in the key layout of the authors' released 3-scale generator (RELEASED_LAYOUT), its 64 /
    128 / 256 channels replaced by ``channels``, ``module.``-prefixed as DataParallel saves them."""
    import json

    layout = json.loads(RELEASED_LAYOUT.read_text())
    widths = dict(zip(layout["source"]["arguments"]["stages_channels"], channels, strict=True))
    gen = torch.Generator().manual_seed(seed)
    return {
        f"{prefix}{name}": torch.randn([widths.get(n, n) for n in shape], generator=gen) * 0.05
        for name, shape in layout["keys"]
    }
