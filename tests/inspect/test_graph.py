"""The model graph: hierarchy, shapes, shortcut kinds and parameters as a user reads them."""

from __future__ import annotations

import pytest

from resnetlab.inspect.graph import format_graph, model_graph, plot_graph
from resnetlab.models import count_parameters, create_model


def _graph(name: str, **overrides):
    model = create_model(name, in_channels=1, image_size=28, **overrides)
    return model, model_graph(model)


def test_resnet_hierarchy_shapes_and_shortcut_kinds():
    model, root = _graph("resnetv2-20", stack_shortcut=True)
    assert [c.kind for c in root.children] == ["stem", "stack", "stack", "stack", "head"]
    units = root.find("unit")
    assert len(units) == 6 and all(len(u.find("layer")) == 3 for u in units)
    assert [u.shortcut for u in units] == [
        "projection 1x1/1",
        "identity",  # stack 0: 16 -> 64 maps at 28x28
        "projection 1x1/2",
        "identity",  # stack 1: halves to 14x14
        "projection 1x1/2",
        "identity",
    ]  # stack 2: halves to 7x7
    stacks = root.find("stack")
    assert [s.shortcut for s in stacks] == [
        "projection 1x1/1",
        "projection 1x1/2",
        "projection 1x1/2",
    ]
    assert [s.out_shape for s in stacks] == [(64, 28, 28), (128, 14, 14), (256, 7, 7)]
    assert root.out_shape == (10,) and root.in_shape == (1, 28, 28)
    # parameters add up: the model's total, and each stack is the sum of its parts
    assert root.params == count_parameters(model)
    for s in stacks:
        assert s.params == sum(c.params for c in s.children)
    assert units[2].children[0].detail == "BN-ReLU-Conv 1x1/2 64->32"


def test_plain_net_has_no_shortcuts_and_identity_stack_shortcut_is_named():
    _, plain = _graph("plain-20")
    assert {u.shortcut for u in plain.find("unit")} == {"none"}
    assert all(s.shortcut is None for s in plain.find("stack"))
    _, micro = _graph(
        "resnetv2-micro", stack_shortcut=True, stack_channels=(8, 16), stem_channels=8
    )
    assert [s.shortcut for s in micro.find("stack")] == ["identity", "projection 1x1/2"]


def test_text_view_lists_every_layer_with_path_shape_and_params():
    model, root = _graph("resnetv2-mini")
    text = format_graph(root)
    for path, _module in model.named_modules():
        if path.count(".") == 4 and path.endswith((".layers.0", ".layers.1")):
            assert path in text
    line = next(ln for ln in text.splitlines() if ln.rstrip().endswith("stacks.1.units.0"))
    assert "[shortcut: projection 1x1/2]" in line and "(64, 7, 7)" in line and "57,536" in line
    shallow = format_graph(root, depth=1)
    assert "stacks.0.units.0" not in shallow and "stacks.2" in shallow


@pytest.mark.parametrize("name", ["resnetv2-164", "simple-cnn"])
def test_picture_draws_deep_and_non_resnet_models(name):
    _, root = _graph(name)
    fig = plot_graph(root)
    texts = [t.get_text() for t in fig.axes[0].texts]
    if name == "resnetv2-164":
        # 18 units per stack are folded: the first ones, a marker, and the last one
        assert sum("more units like these" in t for t in texts) == 3
        assert fig.get_size_inches()[1] < 20
    else:
        assert any(t.startswith("blocks.0") for t in texts)
        assert "no shortcuts" in fig._suptitle.get_text()


def test_picture_draws_every_shortcut_beside_its_unit_and_stack():
    _, root = _graph("resnetv2-20", stack_shortcut=True)
    fig = plot_graph(root, max_units_per_stack=2)
    texts = [t.get_text() for t in fig.axes[0].texts]
    # one arc label per unit: each stack's first unit projects, the second is identity
    assert texts.count("proj 1x1/1") == 1 and texts.count("proj 1x1/2") == 2
    assert texts.count("identity") == 3
    assert [t for t in texts if t.startswith("stack\nshortcut")] == [
        "stack\nshortcut\nprojection 1x1/1",
        "stack\nshortcut\nprojection 1x1/2",
        "stack\nshortcut\nprojection 1x1/2",
    ]
    boxes = [t for t in texts if "params" in t]
    assert boxes[0].startswith("stem") and boxes[-1].startswith("head")
    assert sum(t.startswith("stack 1 unit") for t in boxes) == 2
    assert "green = identity shortcut" in fig._suptitle.get_text()
    assert plot_graph(root, title="mine")._suptitle.get_text() == "mine"
