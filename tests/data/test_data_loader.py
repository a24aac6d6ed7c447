"""TensorLoader: shapes, normalisation, batched augmentation, order, shards, drop_last."""

from __future__ import annotations

import pytest
import torch

from resnetlab.data import Augment, TensorLoader
from resnetlab.data.augment import cutout, random_crop, random_flip
from resnetlab.errors import ConfigError


def _data(n=103, c=3, h=8, w=8):
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=gen)
    labels = torch.arange(n) % 7
    return images, labels


def test_shapes_dtypes_and_len():
    images, labels = _data()
    loader = TensorLoader(images, labels, 10, shuffle=False)
    batches = list(loader)
    assert len(loader) == len(batches) == 11
    assert [len(y) for _, y in batches] == [10] * 10 + [3]
    x, y = batches[0]
    assert x.shape == (10, 3, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert loader.dataset_size == 103
    # no shuffle, no augmentation: the images themselves, scaled to [0, 1]
    assert torch.equal(torch.cat([y for _, y in batches]), labels)
    assert torch.allclose(x, images[:10].float() / 255)


def test_normalisation_uses_mean_and_std():
    images, labels = _data()
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.25, 0.5)
    loader = TensorLoader(images, labels, 103, shuffle=False, mean=mean, std=std)
    x, _ = next(iter(loader))
    want = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1
    )
    assert torch.allclose(x, want, atol=1e-5)


def test_channels_last():
    images, labels = _data()
    x, _ = next(iter(TensorLoader(images, labels, 8, channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last) and x.shape == (8, 3, 8, 8)


def test_augmentation_changes_images_but_keeps_labels():
    images, labels = _data(n=64)
    plain = TensorLoader(images, labels, 64, seed=3)
    aug = TensorLoader(
        images, labels, 64, seed=3, augment=Augment(crop_padding=2, flip=True, cutout=3)
    )
    (xp, yp), (xa, ya) = next(iter(plain)), next(iter(aug))
    assert torch.equal(yp, ya)  # same order, same labels
    changed = (xp != xa).flatten(1).any(1)
    assert changed.float().mean() > 0.9


def test_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.uint8).view(2, 1, 5, 5)
    gen = torch.Generator().manual_seed(1)
    out = random_crop(x, 2, gen)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        windows = [padded[i, :, dy : dy + 5, dx : dx + 5] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    # over many draws every offset appears, so it is really random per sample
    many = random_crop(x[:1].expand(400, 1, 5, 5).contiguous(), 2, gen)
    assert len({m.numpy().tobytes() for m in many}) == 25


def test_flip_and_cutout_per_sample():
    x = torch.arange(200 * 1 * 4 * 4, dtype=torch.float32).view(200, 1, 4, 4)
    gen = torch.Generator().manual_seed(0)
    flipped = random_flip(x, gen)
    same = (flipped == x).flatten(1).all(1)
    mirrored = (flipped == x.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 60 < int(mirrored.sum()) < 140
    ones = torch.ones(50, 2, 8, 8)
    cut = cutout(ones, 4, gen)
    zeros = (cut == 0).sum((1, 2, 3)) / 2
    assert bool((zeros > 0).all()) and bool((zeros <= 16).all())
    assert bool((cut[:, 0] == cut[:, 1]).all())  # same square in every channel


def test_same_seed_same_order_and_augmentation():
    images, labels = _data()
    kw = dict(augment=Augment(crop_padding=1, flip=True, cutout=2), seed=7)
    a = [b for b in TensorLoader(images, labels, 16, **kw)]
    b = [b for b in TensorLoader(images, labels, 16, **kw)]
    assert all(
        torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b, strict=True)
    )
    c = [b for b in TensorLoader(images, labels, 16, augment=kw["augment"], seed=8)]
    assert not torch.equal(a[0][1], c[0][1])


def test_epochs_differ_and_set_epoch_replays():
    images, labels = _data()
    loader = TensorLoader(images, labels, 103)
    first = next(iter(loader))[1]
    second = next(iter(loader))[1]
    assert not torch.equal(first, second)  # iterating advances the epoch
    loader.set_epoch(0)
    assert torch.equal(next(iter(loader))[1], first)
    assert sorted(first.tolist()) == sorted(labels.tolist())  # a permutation


@pytest.mark.parametrize("drop_last", [False, True])
def test_ranks_take_disjoint_shards_covering_the_epoch(drop_last):
    n, world = 103, 4
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1)  # the pixel is the index
    labels = torch.arange(n)
    loaders = [
        TensorLoader(images, labels, 5, seed=1, rank=r, world_size=world, drop_last=drop_last)
        for r in range(world)
    ]
    for loader in loaders:
        loader.set_epoch(3)
    seen = [torch.cat([y for _, y in loader]) for loader in loaders]
    assert len({len(loader) for loader in loaders}) == 1  # equal batch counts on all ranks
    assert len({len(s) for s in seen}) == 1
    if drop_last:
        # 103 // 4 = 25 per rank, 5 full batches each: 100 distinct samples, none twice
        assert all(len(s) == 25 for s in seen)
        everything = torch.cat(seen)
        assert len(set(everything.tolist())) == 100
    else:
        # 26 per rank: the 104th sample wraps around to the first of the permutation
        everything = torch.cat(seen)
        assert len(everything) == 104 and set(everything.tolist()) == set(range(n))
        for i in range(world):
            for j in range(i + 1, world):
                overlap = set(seen[i].tolist()) & set(seen[j].tolist())
                assert len(overlap) <= 1
    # the pixel travelled with its label through indexing
    x, y = next(iter(loaders[0]))
    assert torch.equal((x.view(-1) * 255).round().long(), y)


def test_drop_last_single_rank():
    images, labels = _data(n=103)
    loader = TensorLoader(images, labels, 10, drop_last=True)
    assert len(loader) == 10 and [len(y) for _, y in loader] == [10] * 10


def test_bad_arguments():
    images, labels = _data()
    with pytest.raises(ConfigError, match="rank"):
        TensorLoader(images, labels, 8, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="labels"):
        TensorLoader(images, labels[:5], 8)
    with pytest.raises(ConfigError, match="mean has 1 values for 3 channels"):
        TensorLoader(images, labels, 8, mean=(0.5,), std=(0.5, 0.5, 0.5))
    with pytest.raises(ConfigError, match="crop_padding"):
        Augment(crop_padding=-1)
