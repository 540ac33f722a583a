"""train/heads.py: plates assigned only to anchors that can draw them, and head levels started
afresh after ``init=`` (the shipped detector's stride-16/32 heads never fire)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.model_fixtures import tiny_overrides

from stage.config import compose

STRIDES = [8.0, 16.0, 32.0]


def anchors(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor centres in pixels and their strides, as Ultralytics' loss makes them."""
    from ultralytics.utils.tal import make_anchors

    feats = [torch.zeros(1, 1, height // int(s), width // int(s)) for s in STRIDES]
    points, strides = make_anchors(feats, torch.tensor(STRIDES), 0.5)
    return points * strides, strides[:, 0]


@pytest.mark.parametrize("shape", [(640, 640), (384, 640), (256, 512)])
def test_anchor_strides_are_recovered_from_the_centres(shape):
    from train.heads import anchor_strides

    points, strides = anchors(*shape)
    assert torch.equal(anchor_strides(points, STRIDES), strides)


def candidates_per_stride(assigner, boxes: list[list[float]]) -> list[dict[int, int]]:
    from train.heads import anchor_strides

    points, _ = anchors(640, 640)
    gt = torch.tensor([boxes], dtype=torch.float32)
    mask = assigner.select_candidates_in_gts(points, gt, torch.ones(1, len(boxes), 1))
    strides = anchor_strides(points, STRIDES)
    return [{int(s): int(((strides == s) & mask[0, i]).sum()) for s in STRIDES} for i in range(len(boxes))]


def test_a_plate_wider_than_a_level_can_draw_gets_no_anchor_of_that_level():
    from ultralytics.utils.tal import TaskAlignedAssigner

    from train.heads import FitLevelAssigner

    wide, small = [100.0, 300.0, 500.0, 400.0], [300.0, 100.0, 400.0, 140.0]
    fit = candidates_per_stride(FitLevelAssigner(topk=10, num_classes=1, stride=STRIDES), [wide, small])
    usual = candidates_per_stride(TaskAlignedAssigner(topk=10, num_classes=1, stride=STRIDES), [wide, small])
    # 400 px wide: a stride-8 anchor reaches 15 x 8 = 120 px each side, a stride-16 one 240 px
    assert usual[0][8] > 0 and fit[0][8] == 0
    assert 0 < fit[0][16] < usual[0][16] and fit[0][32] == usual[0][32]
    assert fit[1] == usual[1]  # 100 px wide: every anchor inside it can draw it


def test_a_plate_no_anchor_can_draw_keeps_its_usual_candidates():
    from ultralytics.utils.tal import TaskAlignedAssigner

    from train.heads import FitLevelAssigner

    only_fine = [8.0]  # a one-level model: nothing reaches a 400 px box
    box = [[100.0, 300.0, 500.0, 400.0]]
    fit = FitLevelAssigner(topk=10, num_classes=1, stride=only_fine)
    usual = TaskAlignedAssigner(topk=10, num_classes=1, stride=only_fine)
    points, _ = anchors(640, 640)
    points = points[: (640 // 8) ** 2]
    gt, valid = torch.tensor([box]), torch.ones(1, 1, 1)
    assert torch.equal(
        fit.select_candidates_in_gts(points, gt, valid), usual.select_candidates_in_gts(points, gt, valid)
    )


@pytest.mark.slow
@pytest.mark.shared_data
def test_fine_tuning_restarts_the_chosen_levels_and_trains_with_the_fitting_assigner(
    tiny_subsets, tiny_weights, tmp_path
):
    from train.run import train

    overrides = tiny_overrides(tmp_path, "plate_det", tiny_subsets["plate_det"], ["plots=false"])
    # lr0=0 (SGD): nothing moves, so the checkpoint shows exactly what the switches did
    result = train(
        compose(
            "train",
            [
                *overrides,
                f"init={tiny_weights['plate_det']}",
                "optimizer=SGD",
                "lr0=0.0",
                "+augment.warmup_epochs=0",  # no warm-up: its bias learning rate is not lr0
                "heads.fit_levels=true",
                "heads.reinit_strides=[16,32]",
            ],
        )
    )

    def head(path):
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        return (ckpt.get("ema") or ckpt["model"]).float().model[-1]

    before, after = head(tiny_weights["plate_det"]), head(result.last)
    assert torch.equal(before.cv3[0][-1].weight, after.cv3[0][-1].weight)  # stride 8 kept
    for level, stride in ((1, 16), (2, 32)):
        assert not torch.equal(before.cv3[level][-1].weight, after.cv3[level][-1].weight)
        assert not torch.equal(before.cv2[level][0].conv.weight, after.cv2[level][0].conv.weight)
        prior = math.log(5 / after.nc / (640 / stride) ** 2)  # checkpoints are saved in fp16
        assert after.cv3[level][-1].bias[: after.nc].tolist() == pytest.approx([prior] * after.nc, abs=0.01)
        assert after.cv2[level][-1].bias.tolist() == pytest.approx([1.0] * len(after.cv2[level][-1].bias))
