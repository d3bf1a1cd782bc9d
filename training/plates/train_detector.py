"""Train Veil's plate detector (PlateNet, detector_model.py) on plates_train plus synthetic plates; export ONNX.

    .venv/bin/python -m training.plates.train_detector --data ../shared/data/plates_train \
        --out worker/models/plate_detector_v1/plate_detector.onnx --steps 6000 --batch 64 --seed 0

Only plates_train is read (never the openalpr evaluation set); images in the held-out tenth
(dataset.is_held_out) are skipped so they measure the detector honestly. `--images` points at another copy of
the images folder (the same names, any format OpenCV reads: e.g. re-encoded for a transfer). Runs on CUDA when
torch sees a GPU (minutes), else on the CPU (keep --steps small there).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from training.plates.dataset import LabelledImage, is_held_out, load_coco
from training.plates.detector_data import SampleConfig, make_sample, targets
from training.plates.detector_model import PlateNet, export_onnx


def find_image(folder: Path, file_name: str) -> Path:
    path = folder / file_name
    if path.is_file():
        return path
    matches = list(path.parent.glob(path.stem + ".*"))
    if not matches:
        raise SystemExit(f"missing training image {file_name} under {folder}")
    return matches[0]


def load_images(data: Path, images: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    pictures, boxes = [], []
    labelled: list[LabelledImage] = load_coco(data / "train.json")
    for item in labelled:
        if is_held_out(item.file_name):
            continue
        bgr = cv2.imread(str(find_image(images, item.file_name)), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"cannot read {item.file_name}")
        pictures.append(bgr)
        boxes.append(item.boxes)  # the 7 `ignore` boxes (< 4 px) are trained on, as the data README allows
    return pictures, boxes


class Crops(Dataset):
    """Sample i is drawn from its own seeded generator: the same run gives the same crops on any workers."""

    def __init__(self, pictures: list[np.ndarray], boxes: list[np.ndarray], cfg: SampleConfig,
                 length: int, seed: int) -> None:
        self.pictures, self.boxes, self.cfg, self.length, self.seed = pictures, boxes, cfg, length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng((self.seed, i))
        k = int(rng.integers(len(self.pictures)))
        crop, plates, ignore = make_sample(self.pictures[k], self.boxes[k], self.cfg, rng)
        t = targets(plates, ignore, self.cfg.size)
        # uint8 through the workers' shared memory (a quarter of float32's); scaled to [-1, 1] on the device.
        image = torch.from_numpy(crop).permute(2, 0, 1).contiguous()
        return {"image": image, **{key: torch.from_numpy(v) for key, v in t.items()}}


def focal_loss(logits: torch.Tensor, heat: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of plate centres."""
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1.0).float()
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p**2 * (1 - heat) ** 4 * (1 - pos) * weight
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1.0)


def box_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(1)
    return (F.l1_loss(pred.float() * m, target * m, reduction="sum")) / mask.sum().clamp(min=1.0)


def train(loader: DataLoader, steps: int, device: torch.device, lr: float, max_minutes: float,
          seed: int) -> PlateNet:
    torch.manual_seed(seed)
    model = PlateNet().to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    budget_s = max_minutes * 60

    def lr_at(progress: float) -> float:
        """Linear warm-up over the first 2 %, then cosine to zero: progress is by steps or by time, whichever
        runs out first, so a run cut by --max-minutes still ends annealed."""
        if progress < 0.02:
            return lr * (progress / 0.02 + 1e-3)
        return lr * 0.5 * (1 + math.cos(math.pi * min((progress - 0.02) / 0.98, 1.0)))

    use_amp = device.type == "cuda"
    started = time.time()
    model.train()
    step, heat_sum, box_sum = 0, 0.0, 0.0
    for batch in loader:
        progress = max(step / steps, (time.time() - started) / budget_s)
        if progress >= 1.0:
            break
        for group in optimiser.param_groups:
            group["lr"] = lr_at(progress)
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            logits, box = model(batch["image"].float() / 127.5 - 1.0)
        lh = focal_loss(logits, batch["heat"], batch["weight"])
        lb = box_loss(box, batch["box"], batch["box_mask"])
        loss = lh + lb
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimiser.step()
        step += 1
        heat_sum += float(lh.detach())
        box_sum += float(lb.detach())
        if step % 200 == 0:
            print(f"step {step}/{steps} heat {heat_sum / 200:.4f} box {box_sum / 200:.4f} "
                  f"lr {lr_at(progress):.2e} {time.time() - started:.0f} s", flush=True)
            heat_sum = box_sum = 0.0
    print(f"trained {step} steps in {time.time() - started:.0f} s", flush=True)
    return model.cpu().eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="plates_train folder (train.json, images/)")
    parser.add_argument("--images", type=Path, default=None, help="images folder (default DATA/images)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-minutes", type=float, default=60.0, help="stop early (and export) after this")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cv2.setNumThreads(1)  # the data workers are the parallelism
    pictures, boxes = load_images(args.data, args.images or args.data / "images")
    print(f"{len(pictures)} training images, {sum(len(b) for b in boxes)} plates, device {device}", flush=True)
    data = Crops(pictures, boxes, SampleConfig(size=args.size), args.steps * args.batch, args.seed)
    loader = DataLoader(data, batch_size=args.batch, shuffle=False, num_workers=args.workers,
                        pin_memory=device.type == "cuda", drop_last=True,
                        persistent_workers=args.workers > 0, prefetch_factor=4 if args.workers else None)
    model = train(loader, args.steps, device, args.lr, args.max_minutes, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out.with_suffix(".pt"))
    export_onnx(model, str(args.out))
    print("sha256", hashlib.sha256(args.out.read_bytes()).hexdigest(), flush=True)


if __name__ == "__main__":
    main()
