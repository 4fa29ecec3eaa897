"""insert(): cells go where they are named, channels come from the model, the model is unchanged at init, errors."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from attnas.cells.backbones import create_backbone
from attnas.cells.cell import Cell
from attnas.cells.errors import CellBuildError
from attnas.cells.insert import CellAfter, insert, inserted_cells, placements
from attnas.search_space import load_zoo


def proxy(**kwargs):
    torch.manual_seed(0)
    return create_backbone("proxy_i3d", num_classes=5, **kwargs)


class HandMade3D(nn.Module):
    """A foreign video net (no attnas base class, no input_shape, no placements)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv3d(3, 6, 3, padding=1), nn.BatchNorm3d(6), nn.ReLU()),
            nn.Sequential(nn.Conv3d(6, 12, 3, stride=(1, 2, 2), padding=1), nn.ReLU()),
            nn.AdaptiveAvgPool3d(1),
        )
        self.classifier = nn.Linear(12, 4)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def test_cell_goes_after_the_named_unit_and_sees_its_output():
    model = insert(proxy(), load_zoo("double_attention"), at=["conv3:0"])
    wrapper = model.conv3.units[0]
    assert isinstance(wrapper, CellAfter) and isinstance(wrapper.cell, Cell)
    assert list(inserted_cells(model)) == ["conv3.units.0"]
    seen = {}
    wrapper.block.register_forward_hook(lambda m, a, out: seen.setdefault("block", out))
    wrapper.cell.register_forward_hook(lambda m, a, out: seen.setdefault("cell_input", a[0]))
    model(torch.randn(2, 3, 16, 32, 32))
    assert seen["cell_input"] is seen["block"]
    assert seen["cell_input"].shape == (2, 32, 8, 4, 4)
    assert wrapper.cell.channels == 32 and wrapper.cell.inner_channels == 8  # width 1/4, channels from the model


def test_channels_are_inferred_per_placement_on_the_paper_backbone():
    with torch.device("meta"):
        model = create_backbone("resnet26")
    insert(model, "non_local", at=["conv2:1", "conv3:1", "conv4:0", "conv4:1"])
    cells = inserted_cells(model)
    assert {path: cell.channels for path, cell in cells.items()} == {
        "conv2.units.1": 128, "conv3.units.1": 256, "conv4.units.0": 512, "conv4.units.1": 512}


@pytest.mark.parametrize("spec", ["non_local", "double_attention", "squeeze_excitation", "cbam"])
def test_inserted_model_equals_the_original_at_init(spec):
    original = proxy().eval()
    changed = insert(copy.deepcopy(original), spec, at=["conv2:0", "conv3:0", "conv4"]).eval()
    clip = torch.randn(2, 3, 16, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(changed(clip), original(clip))
    assert len(inserted_cells(changed)) == 3


def test_state_dict_keeps_the_block_under_block_and_adds_the_cell():
    original = proxy()
    changed = insert(copy.deepcopy(original), "double_attention", at=["conv3:0"])
    keys = set(changed.state_dict())
    for key in original.state_dict():
        moved = key.replace("conv3.units.0.", "conv3.units.0.block.")
        assert moved in keys
    assert any(key.startswith("conv3.units.0.cell.") for key in keys)


def test_nested_placements_wrap_inner_blocks_first():
    model = insert(proxy(), "double_attention", at=["conv4", "conv4:0"])
    assert isinstance(model.conv4, CellAfter)
    assert isinstance(model.conv4.block.units[0], CellAfter)
    assert model(torch.randn(1, 3, 16, 32, 32)).shape == (1, 5)
    insert(model, "non_local", at=["conv4:0"])  # unit names still resolve inside a wrapped stage
    assert isinstance(model.conv4.block.units[0].block, CellAfter)


def test_cell_follows_the_model_layout_and_mode():
    model = proxy().train()
    insert(model, "non_local", at=["conv3:0"])
    cell = model.conv3.units[0].cell
    assert cell.training
    assert cell.project.weight.is_contiguous(memory_format=torch.channels_last_3d)
    plain = insert(proxy(channels_last=False).eval(), "non_local", at=["conv3:0"])
    assert not plain.conv3.units[0].cell.training


def test_none_spec_inserts_nothing_but_checks_names():
    model = proxy()
    before = copy.deepcopy(model.state_dict())
    assert insert(model, None, at=["conv3:0"]) is model
    assert insert(model, "none", at=["conv3:0"]) is model
    assert not inserted_cells(model) and model.state_dict().keys() == before.keys()
    with pytest.raises(CellBuildError, match="unknown placement"):
        insert(model, None, at=["conv9:0"])


def test_foreign_model_by_module_path_with_an_example_clip():
    torch.manual_seed(0)
    original = HandMade3D().eval()
    changed = insert(copy.deepcopy(original), "double_attention", at=["features.1"],
                     example_input=torch.zeros(1, 3, 4, 8, 8)).eval()
    assert changed.features[1].cell.channels == 12
    clip = torch.randn(2, 3, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(changed(clip), original(clip))


def test_foreign_model_without_example_measures_channels_on_a_guessed_clip():
    model = insert(HandMade3D(), "non_local", at=["features.0", "features.1", "features.2"])
    assert [model.features[i].cell.channels for i in range(3)] == [6, 12, 12]
    assert model(torch.randn(2, 3, 4, 8, 8)).shape == (2, 4)


class InceptionStyle(nn.Module):
    """A foreign multi-branch block: branches of 8, 16 and 4 channels concatenated (28), its last layer a branch's."""

    def __init__(self, channels: int):
        super().__init__()
        self.branches = nn.ModuleList([
            nn.Sequential(nn.Conv3d(channels, 8, 1), nn.BatchNorm3d(8), nn.ReLU()),
            nn.Sequential(nn.Conv3d(channels, 6, 1), nn.ReLU(), nn.Conv3d(6, 16, 3, padding=1), nn.BatchNorm3d(16)),
            nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), nn.Conv3d(channels, 4, 1), nn.BatchNorm3d(4)),
        ])

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class InceptionNet(nn.Module):
    """A foreign video net (no input_shape, no placements) whose middle block is Inception-style."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv3d(3, 12, 3, padding=1)
        self.mixed = InceptionStyle(12)
        self.head = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(28, 3))

    def forward(self, x):
        return self.head(self.mixed(self.stem(x)))


@pytest.mark.parametrize("example", [None, torch.zeros(1, 3, 4, 8, 8)], ids=["guessed", "given"])
def test_inception_style_block_gets_its_concatenated_channels(example):
    """Issue 20: a multi-branch block's channels are its output's (28), not its last layer's (4)."""
    torch.manual_seed(0)
    original = InceptionNet().eval()
    changed = insert(copy.deepcopy(original), "double_attention", at=["mixed"], example_input=example).eval()
    assert changed.mixed.cell.channels == 28
    clip = torch.randn(2, 3, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(changed(clip), original(clip))   # the cell is the identity at initialisation
        torch.nn.init.normal_(changed.mixed.cell.norm.weight)
        assert (changed(clip) - original(clip)).abs().max() > 1e-4


class Wrapped(nn.Module):
    """The project's backbone used as a foreign model would be: inside a module that has no input_shape."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def test_s3d_inception_blocks_get_their_concatenated_channels_with_and_without_input_shape():
    """Issue 20 on the project's S3D: Mixed_3c emits 480 channels, Mixed_4b 512 and conv5 1024; each block's last
    Conv3d has 64, 64 and 128. With its input_shape, and as a foreign model without one (a guessed clip)."""
    torch.manual_seed(0)
    expected = {"conv3.units.1": 480, "conv4.units.0": 512, "conv5": 1024}
    at = ["conv3:1", "conv4:0", "conv5"]
    with torch.device("meta"):
        native = insert(create_backbone("s3d", num_classes=5), "non_local", at=at)
    assert {path: cell.channels for path, cell in inserted_cells(native).items()} == expected
    foreign = insert(Wrapped(create_backbone("s3d", num_classes=5)), "double_attention",
                     at=["net.conv3.units.1", "net.conv4.units.0", "net.conv5"])
    assert {path: cell.channels for path, cell in inserted_cells(foreign).items()} == {
        f"net.{path}": channels for path, channels in expected.items()}
    for cell in inserted_cells(foreign).values():
        torch.nn.init.normal_(cell.norm.weight)
    with torch.no_grad():
        assert torch.isfinite(foreign.eval()(torch.randn(1, 3, 8, 32, 32))).all()


class FixedSize(nn.Module):
    """A foreign net that takes (3, 4, 8, 8) clips only: its classifier reads the flattened map."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv3d(3, 6, 3, padding=1), nn.ReLU())
        self.classifier = nn.Linear(6 * 4 * 8 * 8, 2)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class NoConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm3d(3)

    def forward(self, x):
        return self.norm(x)


def test_model_whose_input_cannot_be_guessed_asks_for_an_example_clip():
    with pytest.raises(CellBuildError, match=r"FixedSize has no input_shape attribute and did not run on a guessed "
                                             r"clip of shape \(1, 3, 16, 112, 112\).*pass example_input=") as error:
        insert(FixedSize(), "non_local", at=["features"])
    assert "\n" not in str(error.value)
    model = insert(FixedSize(), "non_local", at=["features"], example_input=torch.zeros(1, 3, 4, 8, 8))
    assert model.features.cell.channels == 6 and model(torch.randn(2, 3, 4, 8, 8)).shape == (2, 2)
    with pytest.raises(CellBuildError, match=r"NoConv has no input_shape attribute and no Conv3d.*example_input="):
        insert(NoConv(), "non_local", at=["norm"])
    assert insert(NoConv(), "non_local", at=["norm"], example_input=torch.zeros(1, 3, 2, 4, 4)).norm.cell.channels == 3


def test_dry_run_does_not_move_batchnorm_statistics():
    model = proxy().train()
    before = model.conv2.units[0].branch.a.norm.running_mean.clone()
    insert(model, "double_attention", at=["conv3:0"], example_input=torch.randn(2, 3, 16, 32, 32) + 5)
    torch.testing.assert_close(model.conv2.units[0].branch.a.norm.running_mean, before)
    assert model.training


def test_unknown_placement_lists_the_valid_ones_in_one_line():
    with pytest.raises(CellBuildError) as error:
        insert(proxy(), "non_local", at=["conv3:1"])
    message = str(error.value)
    assert "unknown placement 'conv3:1'" in message and "conv3:0" in message and "conv4" in message
    assert "\n" not in message
    with pytest.raises(CellBuildError, match="unknown placement 'body'.*features.1"):
        insert(HandMade3D(), "non_local", at=["body"])


def test_duplicate_placement_is_an_error():
    with pytest.raises(CellBuildError, match="names block 'conv3.units.0' twice"):
        insert(proxy(), "non_local", at=["conv3:0", "conv3.units.0"])


def test_block_that_does_not_emit_a_5d_map_is_an_error():
    with pytest.raises(CellBuildError, match=r"block 'head' emits a tensor of shape \(1, 5\); a cell needs a 5-D"):
        insert(proxy(), "non_local", at=["head"])
    with pytest.raises(CellBuildError, match="'classifier' emits a tensor of shape"):
        insert(HandMade3D(), "non_local", at=["classifier"], example_input=torch.zeros(1, 3, 4, 8, 8))


def test_too_small_example_clip_for_a_backbone_is_one_line():
    with pytest.raises(CellBuildError, match=r"too small") as error:
        insert(proxy(), "non_local", at=["conv3:0"], example_input=torch.zeros(1, 3, 16, 4, 4))
    assert "\n" not in str(error.value)


def test_example_the_foreign_model_cannot_take_is_one_line():
    with pytest.raises(CellBuildError, match="HandMade3D failed on an example clip of shape") as error:
        insert(HandMade3D(), "non_local", at=["features.1"], example_input=torch.zeros(1, 5, 4, 8, 8))
    assert "\n" not in str(error.value)


def test_placements_of_a_foreign_model_are_its_module_paths():
    names = placements(HandMade3D())
    assert names["features.1"] == "features.1" and "classifier" in names
