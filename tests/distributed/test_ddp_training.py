"""Two gloo ranks on this CPU train resnetv2-micro on real Fashion-MNIST, and agree with
one process trained on the same global batches.

BatchNorm: without SyncBatchNorm (CUDA-only in PyTorch) each rank would normalise with
the statistics of its own half batch, so its forward pass would differ from one process
seeing the whole global batch. The job therefore keeps BatchNorm in eval mode (fixed
statistics; its scale and shift still train): then data parallelism must reproduce
single-process training exactly, up to float rounding, which is what is asserted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ddp_launch import finish, single, torchrun

pytestmark = pytest.mark.slow

STEPS, BATCH, CHECKPOINT_AT = 6, 32, 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, fashion_mnist_dir: Path) -> dict:
    root = tmp_path_factory.mktemp("ddp")
    common = ("--steps", str(STEPS), "--batch", str(BATCH), "--lr", "0.2")
    status, output = finish(
        torchrun(root / "ddp", fashion_mnist_dir, *common, "--checkpoint-at", str(CHECKPOINT_AT)),
        timeout=120,
    )
    assert status == 0, output
    # The single-process reference and a resume of rank 0's checkpoint on one process.
    ref = single(root / "ref", fashion_mnist_dir, *common, "--global-from", str(root / "ddp"))
    res = single(
        root / "resume",
        fashion_mnist_dir,
        *common,
        "--global-from",
        str(root / "ddp"),
        "--resume",
        str(root / "ddp" / "checkpoint.pt"),
    )
    for proc in (ref, res):
        status, output = finish(proc, timeout=120)
        assert status == 0, output

    def load(name: str) -> dict:
        return torch.load(root / name, weights_only=True)

    return {
        "rank0": load("ddp/rank0.pt"),
        "rank1": load("ddp/rank1.pt"),
        "ref": load("ref/rank0.pt"),
        "resume": load("resume/rank0.pt"),
        "root": root,
    }


def test_ranks_see_disjoint_shards_of_one_permutation(runs: dict) -> None:
    a = set(runs["rank0"]["indices"].tolist())
    b = set(runs["rank1"]["indices"].tolist())
    assert len(a) == len(b) == STEPS * BATCH
    assert not a & b


def test_parameters_identical_across_ranks_after_steps(runs: dict) -> None:
    p0, p1 = runs["rank0"]["params"], runs["rank1"]["params"]
    assert torch.equal(p0, p1)
    assert torch.equal(runs["rank0"]["init_params"], runs["rank1"]["init_params"])
    assert (p0 - runs["rank0"]["init_params"]).abs().max() > 1e-3  # the steps moved them


def test_loss_curve_matches_single_process_on_the_global_batch(runs: dict) -> None:
    ddp, ref = runs["rank0"]["losses"], runs["ref"]["losses"]
    assert len(ddp) == len(ref) == STEPS
    assert runs["rank1"]["losses"] == ddp  # the reduced loss is the same on every rank
    assert ddp == pytest.approx(ref, rel=1e-4, abs=1e-5)
    assert torch.allclose(runs["rank0"]["params"], runs["ref"]["params"], atol=1e-5)
    assert runs["rank0"]["global_batch"] == 2 * BATCH


def test_checkpoint_of_rank0_resumes_on_another_world_size(runs: dict) -> None:
    # Saved by rank 0 of 2 (unwrapped model + optimiser), resumed by one process.
    assert runs["resume"]["losses"] == pytest.approx(
        runs["ref"]["losses"][CHECKPOINT_AT:], rel=1e-4, abs=1e-5
    )
    assert torch.allclose(runs["resume"]["params"], runs["ref"]["params"], atol=1e-5)
    state = torch.load(runs["root"] / "ddp" / "checkpoint.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in state["model"])


def test_metrics_are_weighted_means_and_throughput_sums(runs: dict) -> None:
    # Rank r reported loss r+1 over r+1 samples and 100*(r+1) images/s.
    for rank in ("rank0", "rank1"):
        check = runs[rank]["check"]
        assert check["metrics"]["loss"] == pytest.approx((1 * 1 + 2 * 2) / 3)
        assert check["metrics"]["images_per_s"] == pytest.approx(300.0)
        assert check["metrics"]["step"] == 7 and isinstance(check["metrics"]["step"], int)
        assert check["gathered"] == [0, 10]
        assert [s["rank"] for s in check["system"]] == [0, 1]
        assert [s["cpu_percent"] for s in check["system"]] == [0.0, 10.0]
        assert check["broadcast"] == "from rank 0"
        assert check["sum"] == [3.0, 2.0]
    # One process: its own values, unchanged.
    assert runs["ref"]["check"]["metrics"] == {"loss": 1.0, "images_per_s": 100.0, "step": 7}


def test_only_rank0_logs_and_states_the_global_batch(runs: dict) -> None:
    log0 = (runs["root"] / "ddp" / "rank0.log").read_text()
    log1 = (runs["root"] / "ddp" / "rank1.log").read_text()
    assert "global batch 64 = 32 per rank x 2 ranks" in log0
    assert "backend gloo" in log0
    assert log1 == ""


def test_evaluation_split_over_ranks_counts_every_image_once(runs: dict) -> None:
    # 255 held-out images on 2 ranks: shards of 128 and 127, no image padded in twice, so
    # the job reports exactly what one process reports for the same weights.
    n = 255
    shards = [runs[r]["eval"]["shard"] for r in ("rank0", "rank1")]
    assert sorted(torch.cat(shards).tolist()) == list(range(n))
    for rank in ("rank0", "rank1"):
        ev = runs[rank]["eval"]
        assert ev["sharded"]["count"] == ev["alone"]["count"] == n
        assert int(ev["sharded"]["confusion"].sum()) == n
        assert torch.equal(ev["sharded"]["confusion"], ev["alone"]["confusion"])
        assert ev["sharded"]["accuracy"] == ev["alone"]["accuracy"]
        assert ev["sharded"]["loss"] == pytest.approx(ev["alone"]["loss"], rel=1e-6)
