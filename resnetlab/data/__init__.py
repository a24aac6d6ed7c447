"""Datasets as tensors: find, download and verify files, parse them once, load fast.

``load(name, split)`` returns an :class:`ImageDataset` (uint8 ``(N, C, H, W)`` images and
int64 labels); :class:`TensorLoader` keeps a split on the training device and yields
augmented, normalised batches without per-sample Python work.
"""

from resnetlab.data.api import load
from resnetlab.data.augment import Augment
from resnetlab.data.dataset import ImageDataset, channel_stats, split_validation
from resnetlab.data.loader import TensorLoader
from resnetlab.data.spec import DATASETS, DatasetSpec, RemoteFile

__all__ = [
    "DATASETS",
    "Augment",
    "DatasetSpec",
    "ImageDataset",
    "RemoteFile",
    "TensorLoader",
    "channel_stats",
    "load",
    "split_validation",
]
