"""The plate verifier: a small CNN that says whether a context window holds a plate and where it is."""

from __future__ import annotations

import torch
from torch import nn

from worker.engine.plates.crops import INPUT_HW


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class PlateVerifier(nn.Module):
    """(N, 3, 48, 96) crops in [-1, 1] -> logit (N,) and plate box (N, 4) as fractions of the window.

    Five 3x3 convolutions, four of them strided (about 13 MFLOPs a crop): it runs on every text proposal of
    every frame, and it was trained on two shared CPU cores.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv(3, width, 2), _conv(width, 2 * width, 2), _conv(2 * width, 4 * width, 2),
            _conv(4 * width, 4 * width, 1), _conv(4 * width, 4 * width, 2),
        )
        h, w = INPUT_HW[0] // 16, INPUT_HW[1] // 16
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * width * h * w, 64), nn.ReLU(inplace=True), nn.Linear(64, 5)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.features(x))
        return out[:, 0], out[:, 1:]


class ExportWrapper(nn.Module):
    """What the ONNX file computes: probabilities rather than logits, so inference needs no torch maths."""

    def __init__(self, model: PlateVerifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logit, box = self.model(x)
        return torch.sigmoid(logit), box


def export_onnx(model: PlateVerifier, path: str, opset: int = 17) -> None:
    model.eval()
    dummy = torch.zeros(1, 3, *INPUT_HW)
    torch.onnx.export(
        # The wrapper in eval mode too: the exporter restores each module's mode afterwards, and a wrapper
        # left in training mode would switch the model's BatchNorm back to batch statistics.
        ExportWrapper(model).eval(),
        (dummy,),
        path,
        input_names=["crops"],
        output_names=["score", "box"],
        dynamic_axes={"crops": {0: "n"}, "score": {0: "n"}, "box": {0: "n"}},
        opset_version=opset,
        dynamo=False,
    )
