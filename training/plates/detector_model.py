"""Veil's plate detector: a small centre-point network (CenterNet-style) that finds plates on the whole frame.

One heatmap at stride 4 says where plate centres are; two channels give the box's log width and height (in
output cells) and two its centre's offset inside the cell. Stride 4 keeps plates of 8-10 px apart and
findable; the backbone is depthwise-separable blocks down to stride 32 for context (a plate is a rectangle
of characters on a vehicle, not any text), merged back up as a small feature pyramid. It runs on every
sampled frame on two CPU cores, so the width is kept low (about 1.2 GMAC on a 1280x720 frame).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Block(nn.Module):
    """Depthwise 3x3 then pointwise 1x1 (a MobileNet block), residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.dw = _conv_bn(cin, cin, 3, stride, groups=cin)
        self.pw = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pw(self.dw(x))
        return F.relu(out + x if self.residual else out)


def _stage(cin: int, cout: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(_Block(cin, cout, 2), *[_Block(cout, cout, 1) for _ in range(blocks - 1)])


class PlateNet(nn.Module):
    """(N, 3, H, W) BGR in [-1, 1], H and W multiples of 32 -> heatmap logits (N, 1, H/4, W/4) and
    box terms (N, 4, H/4, W/4): log width, log height (in stride-4 cells), x and y offset of the centre."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(_conv_bn(3, w, 3, 2), _Block(w, w, 1))  # stride 2
        self.s4 = _stage(w, 2 * w, 2)  # stride 4
        self.s8 = _stage(2 * w, 3 * w, 3)  # stride 8
        self.s16 = _stage(3 * w, 6 * w, 3)  # stride 16
        self.s32 = _stage(6 * w, 8 * w, 2)  # stride 32
        f = 2 * w
        self.lat32 = nn.Conv2d(8 * w, f, 1)
        self.lat16 = nn.Conv2d(6 * w, f, 1)
        self.lat8 = nn.Conv2d(3 * w, f, 1)
        self.lat4 = nn.Conv2d(2 * w, f, 1)
        self.smooth16 = _Block(f, f, 1)
        self.smooth8 = _Block(f, f, 1)
        self.smooth4 = _Block(f, f, 1)
        self.heat = nn.Sequential(_Block(f, f, 1), nn.Conv2d(f, 1, 1))
        self.box = nn.Sequential(_Block(f, f, 1), nn.Conv2d(f, 4, 1))
        # Start the heatmap at the prior of a rare centre (CenterNet's -2.19 = logit of 0.1) so early
        # training is not swamped by the loss of millions of background cells.
        nn.init.constant_(self.heat[-1].bias, -2.19)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c4 = self.s4(self.stem(x))
        c8 = self.s8(c4)
        c16 = self.s16(c8)
        c32 = self.s32(c16)
        p = self.lat32(c32)
        p = self.smooth16(self.lat16(c16) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        p = self.smooth8(self.lat8(c8) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        p = self.smooth4(self.lat4(c4) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        return self.heat(p), self.box(p)


class ExportWrapper(nn.Module):
    """What the ONNX file computes: centre probabilities with non-peaks zeroed (3x3 max-pool, CenterNet's
    NMS) and the box terms, so inference is a threshold and a gather in numpy."""

    def __init__(self, model: PlateNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, box = self.model(x)
        heat = torch.sigmoid(logits)
        peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat).to(heat.dtype)
        return peaks, box


def export_onnx(model: PlateNet, path: str, opset: int = 17) -> None:
    model.eval()
    dummy = torch.zeros(1, 3, 256, 448)
    torch.onnx.export(
        # The wrapper in eval mode too: the exporter restores each module's mode afterwards, and a wrapper
        # left in training mode would switch the model's BatchNorm back to batch statistics.
        ExportWrapper(model).eval(),
        (dummy,),
        path,
        input_names=["image"],
        output_names=["peaks", "box"],
        dynamic_axes={"image": {0: "n", 2: "h", 3: "w"}, "peaks": {0: "n", 2: "fh", 3: "fw"},
                      "box": {0: "n", 2: "fh", 3: "fw"}},
        opset_version=opset,
        dynamo=False,
    )
