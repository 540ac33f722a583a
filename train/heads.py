"""Detector heads that can draw the plates they are given.

A YOLOv8 anchor at stride ``s`` reaches at most ``(reg_max - 1) * s`` pixels from its centre on each
side (DFL with ``reg_max`` 16: a box at most 240 px wide at stride 8). Ultralytics' task-aligned
assigner picks each label's anchors by ``score ** 0.5 * IoU ** 6`` over every level, so a level
that scores nothing is never picked and only learns "no plate": inside large plates the shipped
detector's stride-16 and stride-32 heads score at most 2e-6 and 0.009, and every plate wider than
240 input pixels is drawn as one or more 240 px boxes along it (runtime/zoo/MODEL_CARD.md).
Two remedies, both config switches:

* ``fit_levels``: a label is a candidate only for anchors that can reach all four of its sides
  (a label no anchor can reach keeps its usual candidates);
* ``reinit_strides``: the box and class branches of these strides start afresh (Ultralytics'
  initialisation and score prior) after the ``init=`` weights are loaded.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from ultralytics.utils.tal import TaskAlignedAssigner


def anchor_strides(points: torch.Tensor, strides: list[float]) -> torch.Tensor:
    """The stride of each anchor of ``points`` ([N, 2] centres in pixels, ``(j + 0.5) * s``):
    the one stride for which ``x / s - 0.5`` is a whole number (unique for 8, 16, 32)."""
    x = points[:, 0:1].double()
    s = torch.tensor(strides, dtype=torch.float64, device=points.device)[None]
    frac = (x / s - 0.5).remainder(1.0)
    fits = (frac < 1e-6) | (frac > 1 - 1e-6)
    return (fits.double() * s).max(dim=1).values.to(points.dtype)


class FitLevelAssigner(TaskAlignedAssigner):
    """TaskAlignedAssigner whose candidates are only anchors that can draw the label's box."""

    reg_max: int = 16

    def select_candidates_in_gts(self, xy_centers, gt_bboxes, mask_gt, eps=1e-9):
        mask = super().select_candidates_in_gts(xy_centers, gt_bboxes, mask_gt, eps)
        reach = (self.reg_max - 1) * anchor_strides(xy_centers, list(self.stride))  # [N]
        lt, rb = gt_bboxes.unsqueeze(2).chunk(2, 3)  # [b, n, 1, 2]
        dist = torch.cat([xy_centers - lt, rb - xy_centers], dim=-1)  # [b, n, N, 4]
        fits = mask & (dist.amax(-1) <= reach)
        return torch.where(fits.any(-1, keepdim=True), fits, mask)


def use_fit_levels(model: Any) -> None:
    """Give ``model`` (an Ultralytics DetectionModel) a loss whose assigner is FitLevelAssigner."""
    criterion = model.init_criterion()
    old = criterion.assigner
    assigner = FitLevelAssigner(
        topk=old.topk,
        num_classes=old.num_classes,
        alpha=old.alpha,
        beta=old.beta,
        stride=list(old.stride),
        eps=old.eps,
        topk2=old.topk2,
    )
    assigner.reg_max = int(model.model[-1].reg_max)
    criterion.assigner = assigner
    model.criterion = criterion


def reinit_heads(model: Any, strides: list[int]) -> list[int]:
    """Start the box (cv2) and class (cv3) branches of the given strides afresh; returns the
    levels re-initialised. Biases as Ultralytics' ``Detect.bias_init``."""
    head = model.model[-1]
    levels = []
    for i, s in enumerate(head.stride.tolist()):
        if int(s) not in strides:
            continue
        for branch in (head.cv2[i], head.cv3[i]):
            for module in branch.modules():
                if isinstance(module, (torch.nn.Conv2d, torch.nn.BatchNorm2d)):
                    module.reset_parameters()
        head.cv2[i][-1].bias.data[:] = 1.0
        head.cv3[i][-1].bias.data[: head.nc] = math.log(5 / head.nc / (640 / s) ** 2)
        levels.append(i)
    return levels


def head_callbacks(fit_levels: bool, reinit_strides: list[int]) -> dict[str, Any]:
    """Ultralytics callbacks applying the switches once the trainer holds its model (weights loaded)."""
    if not fit_levels and not reinit_strides:
        return {}

    def apply(trainer) -> None:
        model = trainer.model
        if reinit_strides:
            done = reinit_heads(model, [int(s) for s in reinit_strides])
            if getattr(trainer, "ema", None) is not None:
                trainer.ema.ema.load_state_dict(model.state_dict())
            print(f"heads: levels {done} (strides {list(reinit_strides)}) start afresh")
        if fit_levels:
            use_fit_levels(model)
            print("heads: each plate is assigned only to anchors that can draw it (fit_levels)")

    return {"on_pretrain_routine_end": apply}
