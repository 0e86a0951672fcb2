"""Tests of cugan_lightning.networks: CUnet, the GFM discriminator and the VGG feature extractor."""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import VGG19_Weights

from conftest import released_state_dict
from cugan_lightning.networks import (
    VGG19_LAYERS,
    CUGANDiscriminator,
    CUnet,
    ModulatedResidualBlock,
    PretrainedWeightsMissingError,
    VGGFeatureExtractor,
    count_parameters,
    layer_index,
    load_released_state_dict,
)

TINY = {"channels": (8, 16, 32)}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These inputs are tiny: with a second intra-op thread a busy core turns every op into a long wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def default_net() -> CUnet:
    return CUnet()


def _randomise_cond(net: nn.Module, seed: int = 0) -> None:
    """Give the condition linears large weights so that z matters; biases stay 0, so z = 0 is still the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.cond.named_parameters():
            if name.endswith("weight"):
                p.copy_(torch.randn(p.shape, generator=gen))


# --------------------------------------------------------------------------------------------- CUnet


def test_default_parameter_counts(default_net: CUnet) -> None:
    assert count_parameters(default_net) == {"total": 6_534_476, "base": 6_528_515, "cond": 5_961}
    assert count_parameters(CUnet(conditional=False)) == {"total": 6_528_515, "base": 6_528_515, "cond": 0}
    # 12 MRB + 2 fusions + 1 output, 1,987 modulated channels, no hidden layer
    assert len(default_net.cond) == 15
    assert all(isinstance(m, nn.Linear) and m.in_features == 2 for m in default_net.cond.values())
    assert sum(m.out_features for m in default_net.cond.values()) == 1_987
    cond_names = {n for n, _ in default_net.named_parameters() if n.startswith("cond.")}
    assert len(cond_names) == 30


@pytest.mark.parametrize("width", ["tiny", "default"])
def test_identity_at_zero_z(width: str, default_net: CUnet) -> None:
    net = CUnet(**TINY) if width == "tiny" else default_net
    x = torch.rand(2, 3, 37, 53)
    with torch.no_grad():
        y = net(x, torch.zeros(2, 2))
    assert torch.equal(y, x)


def test_z_changes_output() -> None:
    net = CUnet(**TINY)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        y1 = net(x, torch.tensor([[0.5, 0.0], [0.5, 0.0]]))
        y2 = net(x, torch.tensor([[0.5, 0.0], [0.0, 0.8]]))
    assert not torch.equal(y1, x)
    assert torch.equal(y1[0], y2[0])  # samples are independent
    assert (y1[1] - y2[1]).abs().max() > 1e-4


@pytest.mark.parametrize(
    ("channels", "blocks", "size"),
    [
        ((8, 16, 32), (2, 2, 2), (37, 53)),
        ((8, 16), (3, 3), (37, 53)),
        ((8,), (6,), (37, 53)),
        ((4, 8, 8, 8), (1, 1, 1, 1), (37, 53)),
        ((8, 16, 32), (2, 2, 2), (1, 1)),  # too small for reflect padding: replicate
        ((4, 8, 8, 8), (1, 1, 1, 1), (2, 5)),
    ],
)
def test_any_size_round_trips(channels: tuple, blocks: tuple, size: tuple[int, int]) -> None:
    net = CUnet(channels=channels, blocks=blocks)
    _randomise_cond(net)
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        y = net(x, torch.full((1, 2), 0.5))
        y0 = net(x, torch.zeros(1, 2))
    assert y.shape == x.shape
    assert not torch.equal(y, x)
    assert torch.equal(y0, x)


def test_pads_with_reflection() -> None:
    """A 6x6 input padded by reflection to 8x8 gives the same result as feeding the 8x8 reflection directly."""
    net = CUnet(**TINY)
    _randomise_cond(net)
    x = torch.rand(1, 3, 6, 6)
    z = torch.full((1, 2), 0.7)
    padded = nn.functional.pad(x, (0, 2, 0, 2), mode="reflect")
    with torch.no_grad():
        assert torch.allclose(net(x, z), net(padded, z)[..., :6, :6] - padded[..., :6, :6] + x, atol=1e-6)


def test_condition_weights_path_equals_z_path() -> None:
    net = CUnet(**TINY)
    _randomise_cond(net)
    x, z = torch.rand(2, 3, 20, 12), torch.rand(2, 2)
    weights = net.condition(z)
    assert len(weights) == len(net.cond_names) == 15
    assert [w.shape for w in weights] == [(2, c, 1, 1) for c in net.cond_channels]
    assert net.cond_names[-1] == "out"
    with torch.no_grad():
        assert torch.equal(net(x, weights=weights), net(x, z))
        # zeroed weights switch every modulated branch off: identity
        assert torch.equal(net(x, weights=[torch.zeros_like(w) for w in weights]), x)


def test_unconditional_is_all_weights_one() -> None:
    unet = CUnet(**TINY, conditional=False)
    assert unet.cond is None and count_parameters(unet)["cond"] == 0
    assert unet.condition(torch.rand(2, 2)) == ()
    x = torch.rand(2, 3, 16, 20)
    with torch.no_grad():
        y = unet(x)
        assert torch.equal(y, unet(x, torch.rand(2, 2)))
        assert torch.equal(y, unet(x, torch.rand(5, 7)))  # z ignored, whatever it is
        cunet = CUnet(**TINY)
        result = cunet.load_state_dict(unet.state_dict(), strict=False)
        assert result.unexpected_keys == [] and all(k.startswith("cond.") for k in result.missing_keys)
        ones = [torch.ones_like(w) for w in cunet.condition(torch.zeros(2, 2))]
        assert torch.allclose(cunet(x, weights=ones), y, atol=1e-6)
    assert not torch.equal(y, x)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((torch.rand(3, 16, 16), torch.zeros(1, 2)), {}, r"4-D tensor \(B, C, H, W\)"),
        ((torch.rand(1, 1, 16, 16), torch.zeros(1, 2)), {}, "must have 3 channels"),
        ((torch.rand(1, 3, 16, 16),), {}, "z is required"),
        ((torch.rand(2, 3, 16, 16), torch.zeros(2, 3)), {}, r"z must have shape \(2, 2\)"),
        ((torch.rand(2, 3, 16, 16), torch.zeros(1, 2)), {}, r"z must have shape \(2, 2\)"),
        ((torch.rand(2, 3, 16, 16), torch.zeros(2)), {}, r"z must have shape \(2, 2\)"),
        ((torch.rand(2, 3, 16, 16),), {"weights": [torch.zeros(2, 8, 1, 1)]}, "weights must hold 15 tensors"),
    ],
)
def test_cunet_input_errors(args: tuple, kwargs: dict, match: str) -> None:
    net = CUnet(**TINY)
    with pytest.raises(ValueError, match=match):
        net(*args, **kwargs)


def test_cunet_weight_shape_error() -> None:
    net = CUnet(**TINY)
    weights = list(net.condition(torch.zeros(2, 2)))
    weights[0] = torch.zeros(2, 9, 1, 1)
    with pytest.raises(ValueError, match=r"weights\['enc0_0'\] must have shape \(2, 8, 1, 1\)"):
        net(torch.rand(2, 3, 8, 8), weights=weights)
    with pytest.raises(ValueError, match="unconditional"):
        CUnet(**TINY, conditional=False)(torch.rand(2, 3, 8, 8), weights=weights)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"channels": (8, 16), "blocks": (2, 2, 2)}, "one entry per scale"),
        ({"channels": (), "blocks": ()}, "1 to 4 scales"),
        ({"channels": (4, 4, 4, 4, 4), "blocks": (1, 1, 1, 1, 1)}, "1 to 4 scales"),
    ],
)
def test_cunet_constructor_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CUnet(**kwargs)


@pytest.mark.parametrize(
    ("channels", "blocks"), [((64,), (6,)), ((64, 128), (3, 3)), ((64, 128, 256), (2, 2, 2))]
)
def test_ablation_variants_have_12_blocks(channels: tuple, blocks: tuple) -> None:
    net = CUnet(channels=channels, blocks=blocks)
    assert sum(isinstance(m, ModulatedResidualBlock) for m in net.modules()) == 12
    # one condition linear per block, per fusion and for the output
    assert len(net.cond) == 12 + (len(channels) - 1) + 1


def test_config_rebuilds_the_network() -> None:
    net = CUnet(in_channels=1, cond_dim=3, channels=[8, 16], blocks=[1, 2], conditional=True)
    config = net.config
    assert config == {
        "in_channels": 1,
        "cond_dim": 3,
        "channels": [8, 16],
        "blocks": [1, 2],
        "conditional": True,
    }
    assert json.loads(json.dumps(config)) == config  # plain Python types only
    clone = CUnet(**config)
    clone.load_state_dict(net.state_dict())  # strict: same keys and shapes
    x, z = torch.rand(1, 1, 9, 9), torch.rand(1, 3)
    with torch.no_grad():
        assert torch.equal(clone(x, z), net(x, z))
    assert CUnet().config == {
        "in_channels": 3,
        "cond_dim": 2,
        "channels": [64, 128, 256],
        "blocks": [2, 2, 2],
        "conditional": True,
    }


def test_load_released_state_dict() -> None:
    """Key names of the authors' released generator (3 scales, 2 blocks per side) map onto CUnet."""
    released = released_state_dict((8, 16, 32), seed=0)
    net = CUnet(**TINY)
    net.load_state_dict(load_released_state_dict(released))  # strict
    assert torch.equal(net.cond["msf1"].weight, released["module.stage3_scale.weight"])
    assert torch.equal(net.cond["dec2_1"].bias, released["module.CResBlocks_stage3_right.1.local_scale.bias"])
    assert torch.equal(
        net.encoders[1][0].conv2.weight, released["module.CResBlocks_stage2_left.0.conv2.weight"]
    )
    with pytest.raises(KeyError, match="unexpected key"):
        load_released_state_dict({"something.weight": torch.zeros(1)})


def test_the_released_layout_at_full_size_loads_strictly_with_the_released_parameter_count() -> None:
    """The key list read off the authors' published code (tests/data) maps onto the default CUnet, every key and
    every shape, with their parameter count."""
    released = released_state_dict(prefix="")
    assert len(released) == 90 and sum(t.numel() for t in released.values()) == 6_534_476
    net = CUnet()
    net.load_state_dict(load_released_state_dict(released))  # strict: no key missing or left over


# ------------------------------------------------------------------------------------- discriminator


@pytest.mark.parametrize("size", [64, 96])
def test_discriminator_output_shape(size: int) -> None:
    net_d = CUGANDiscriminator()
    out = net_d(torch.rand(2, 3, size, size), torch.rand(2, 2))
    assert out.shape == (2,)
    assert torch.isfinite(out).all()


def test_discriminator_layout() -> None:
    net_d = CUGANDiscriminator(base_channels=8)
    convs = [layer.conv for layer in net_d.features]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16, 32, 32, 64, 64, 64, 64]
    assert [(c.kernel_size[0], c.stride[0], c.padding[0]) for c in convs] == [(3, 1, 1), (4, 2, 1)] * 5
    assert [layer.norm is not None for layer in net_d.features] == [False] + [True] * 9
    assert len(net_d.cond) == 9
    assert [m.out_features for m in net_d.head if isinstance(m, nn.Linear)] == [100, 1]
    assert net_d.head[0].in_features == 64


def test_gfm_is_identity_at_init() -> None:
    torch.manual_seed(0)
    net_d = CUGANDiscriminator(base_channels=8)
    plain = CUGANDiscriminator(base_channels=8, gfm=False)
    result = plain.load_state_dict(net_d.state_dict(), strict=False)
    assert result.missing_keys == []
    assert result.unexpected_keys and all(k.startswith("cond.") for k in result.unexpected_keys)
    x, z = torch.rand(4, 3, 64, 64), torch.rand(4, 2) + 0.1
    for mode in (True, False):  # batch statistics and running statistics
        net_d.train(mode)
        plain.train(mode)
        assert torch.equal(net_d(x, z), plain(x))


def test_gradients_reach_gfm_condition_layers() -> None:
    net_d = CUGANDiscriminator(base_channels=8)
    out = net_d(torch.rand(4, 3, 64, 64), torch.rand(4, 2) + 0.1)
    out.sum().backward()
    names = [n for n, _ in net_d.named_parameters() if n.startswith("cond.")]
    assert len(names) == 9 * 2 * 2
    for name, p in net_d.named_parameters():
        if name.startswith("cond.") and name.endswith("weight"):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_plain_discriminator() -> None:
    plain = CUGANDiscriminator(gfm=False)
    assert plain.cond is None and count_parameters(plain)["cond"] == 0
    assert plain.config == {"in_channels": 3, "cond_dim": 2, "base_channels": 64, "gfm": False}
    plain = CUGANDiscriminator(**{**plain.config, "base_channels": 8}).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(plain(x), plain(x, torch.rand(2, 2)))


@pytest.mark.parametrize(
    ("x", "z", "match"),
    [
        (torch.rand(3, 64, 64), torch.zeros(1, 2), "4-D tensor"),
        (torch.rand(1, 3, 31, 64), torch.zeros(1, 2), "at least 32x32"),
        (torch.rand(1, 1, 64, 64), torch.zeros(1, 2), "must have 3 channels"),
        (torch.rand(2, 3, 64, 64), None, "z is required"),
        (torch.rand(2, 3, 64, 64), torch.zeros(2, 3), r"z must have shape \(2, 2\)"),
    ],
)
def test_discriminator_input_errors(x: torch.Tensor, z: torch.Tensor | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CUGANDiscriminator(base_channels=8)(x, z)


# ----------------------------------------------------------------------------------------------- VGG

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"


@pytest.fixture(scope="module")
def vgg() -> VGGFeatureExtractor:
    return VGGFeatureExtractor(weights=None)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """An empty torch hub cache, and no download attempts."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a set_dir() elsewhere would override TORCH_HOME
    monkeypatch.setenv("CUGAN_OFFLINE", "1")
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    assert torch.hub.get_dir() == str(folder.parent)
    return folder


def _torchvision_features(n: int) -> nn.Sequential:
    with torch.device("meta"):  # no random init of the 140M parameters
        features = torchvision.models.vgg19().features[:n]
    return features.to_empty(device="cpu")


def test_layer_names_match_torchvision() -> None:
    assert layer_index("conv5_4") == 34 and layer_index("conv1_1") == 0 and layer_index("conv3_4") == 16
    features = _torchvision_features(37)
    for name, index in VGG19_LAYERS.items():
        expected = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d}[name[:4]]
        assert isinstance(features[index], expected), name
    with pytest.raises(ValueError, match="unknown VGG19 layer 'conv6_1'"):
        layer_index("conv6_1")


def test_vgg_output_shape_and_pre_relu(vgg: VGGFeatureExtractor) -> None:
    assert len(vgg.features) == 35 and vgg.out_channels == 512
    with torch.no_grad():
        out = vgg(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 512, 4, 4)
    assert (out < 0).any()  # taken before the ReLU
    shallow = VGGFeatureExtractor("conv2_2", weights=None)
    assert len(shallow.features) == 8
    with torch.no_grad():
        assert shallow(torch.rand(1, 3, 16, 16)).shape == (1, 128, 8, 8)


def test_vgg_is_frozen(vgg: VGGFeatureExtractor) -> None:
    assert all(not p.requires_grad for p in vgg.parameters())
    parent = nn.Sequential(nn.Conv2d(3, 3, 1), vgg)
    parent.train()
    assert parent[0].training
    assert not any(m.training for m in vgg.modules())
    # the loss still reaches the input
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    vgg(x).abs().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())
    assert "mean" not in vgg.state_dict()  # constants stay out of checkpoints


def test_vgg_normalises_like_torchvision(vgg: VGGFeatureExtractor) -> None:
    features = _torchvision_features(35)
    features.load_state_dict(vgg.features.state_dict())
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        expected = features((x - MEAN) / STD)
        assert torch.allclose(vgg(x), expected, rtol=0, atol=1e-5)
        assert not torch.allclose(vgg(x), features(x), atol=1e-2)


def test_vgg_loads_local_state_dict(tmp_path, vgg: VGGFeatureExtractor) -> None:
    features_only = {k: v.clone() for k, v in vgg.features.state_dict().items()}
    full = {f"features.{k}": v for k, v in features_only.items()}
    full["classifier.6.bias"] = torch.zeros(1000)  # parts beyond the truncation are ignored
    for i, state in enumerate((full, features_only)):
        path = tmp_path / f"vgg_{i}.pth"
        torch.save(state, path)
        loaded = VGGFeatureExtractor(weights=path if i == 0 else str(path))
        for (name, p), q in zip(loaded.named_parameters(), vgg.parameters(), strict=True):
            assert torch.equal(p, q), name


def test_vgg_local_state_dict_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VGGFeatureExtractor(weights=tmp_path / "nope.pth")
    path = tmp_path / "partial.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}, path)
    with pytest.raises(ValueError, match=r"missing keys \['2.weight'"):
        VGGFeatureExtractor(weights=path)
    # enough for conv1_1, but the wrong shape
    torch.save({"features.0.weight": torch.zeros(32, 3, 3, 3), "features.0.bias": torch.zeros(32)}, path)
    with pytest.raises(ValueError, match="wrong shapes"):
        VGGFeatureExtractor("conv1_1", weights=path)


def test_vgg_imagenet_from_hub_cache(empty_hub, vgg: VGGFeatureExtractor) -> None:
    empty_hub.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, empty_hub / WEIGHTS_FILE)
    loaded = VGGFeatureExtractor(weights="imagenet")  # CUGAN_OFFLINE=1: the cache alone must do
    assert torch.equal(loaded.features[34].weight, vgg.features[34].weight)


def test_vgg_missing_imagenet_weights_error(empty_hub) -> None:
    with pytest.raises(PretrainedWeightsMissingError) as info:
        VGGFeatureExtractor(weights="imagenet")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert WEIGHTS_FILE in message
    assert str(empty_hub) in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert "weights=<path" in message


def test_vgg_failed_download_is_bounded_and_explained(empty_hub, monkeypatch) -> None:
    monkeypatch.delenv("CUGAN_OFFLINE")
    seen: list[float | None] = []

    def fake_download(self, *args, **kwargs):
        seen.append(socket.getdefaulttimeout())
        raise OSError("network unreachable")

    monkeypatch.setattr(type(VGG19_Weights.IMAGENET1K_V1), "get_state_dict", fake_download)
    before = socket.getdefaulttimeout()
    with pytest.raises(PretrainedWeightsMissingError, match="download failed: OSError: network unreachable"):
        VGGFeatureExtractor(weights="imagenet")
    assert seen and seen[0] is not None and seen[0] <= 30  # a socket timeout was in force
    assert socket.getdefaulttimeout() == before
