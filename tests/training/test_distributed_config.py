"""The distributed fields of TrainConfig: bad values are refused naming the field."""

from __future__ import annotations

import pytest

from resnetlab.errors import ConfigError
from resnetlab.training import TrainConfig


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("dist_timeout_s", 0, "positive number of seconds"),
        ("reference_batch", 0, "at least 1"),
        ("rank", 2, "world_size=1"),
    ],
)
def test_bad_distributed_fields_are_refused_by_name(field: str, value: object, says: str) -> None:
    with pytest.raises(ConfigError, match=f"TrainConfig.{field}=.*{says}"):
        TrainConfig(**{field: value})


def test_distributed_fields_round_trip_through_checkpoint_json() -> None:
    cfg = TrainConfig(dist_timeout_s=12.5, sync_batchnorm=True, reference_batch=256)
    back = TrainConfig.from_dict(cfg.to_dict())
    assert (back.dist_timeout_s, back.sync_batchnorm, back.reference_batch) == (12.5, True, 256)


def test_cli_flags_reach_the_config_fields() -> None:
    import argparse

    from resnetlab.training.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["train", "--sync-bn", "--dist-timeout", "7", "--reference-batch", "512"]
    )
    assert (args.sync_batchnorm, args.dist_timeout_s, args.reference_batch) == (True, 7.0, 512)
