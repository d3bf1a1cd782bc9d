"""Train the plate verifier on plates_train and export it to ONNX.

    .venv/bin/python -m training.plates.train --data ../shared/data/plates_train \
        --text-model PATH/PP-OCRv6_det_small.onnx --out worker/models/veil_plate_verifier_v1/plate_verifier.onnx

Only plates_train is read (never the openalpr evaluation set); images whose name hashes into the held-out
tenth (dataset.is_held_out) are not trained on, so they can measure the whole detector honestly.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from training.plates.augment import augment
from training.plates.dataset import is_held_out, load_coco
from training.plates.model import PlateVerifier, export_onnx
from training.plates.samples import image_samples
from worker.engine.plates.crops import to_blob
from worker.engine.plates.text_proposals import DBParams, TextProposer

# The proposal settings the detector's presets run with, so negatives are the false alarms it will see.
PROPOSAL_LONG_SIDE = 1920
PROPOSAL_MAX_SCALE = 2.0
PROPOSAL_TILE, PROPOSAL_OVERLAP = 640, 128
PROPOSAL_BOX_THRESHOLD = 0.1


def read_bgr(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return bgr


def proposal_order(names: list[str]) -> list[str]:
    """Images in a fixed pseudo-random order (by md5 of the name): the first K get text proposals."""
    return sorted(names, key=lambda n: hashlib.md5(n.encode()).hexdigest())


def text_proposals(
    data: Path, names: list[str], text_model: Path, cache: Path | None, limit: int
) -> dict[str, np.ndarray]:
    """Text-detector boxes for the first `limit` training images in proposal_order (the hard negatives)."""
    chosen = [n for n in proposal_order(names) if not is_held_out(n)][:limit]
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if cache is not None and cache.is_file():
        with cache.open("rb") as fh:
            found = pickle.load(fh)
    missing = [n for n in chosen if n not in found]
    if missing:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        proposer = TextProposer(
            ort.InferenceSession(str(text_model), options), DBParams(box_threshold=PROPOSAL_BOX_THRESHOLD)
        )
        for name in missing:
            bgr = read_bgr(data / "images" / name)
            scale = min(PROPOSAL_LONG_SIDE / max(bgr.shape[:2]), PROPOSAL_MAX_SCALE)
            found[name] = proposer.propose(bgr, scale, PROPOSAL_TILE, PROPOSAL_OVERLAP)
        if cache is not None:
            with cache.open("wb") as fh:
                pickle.dump(found, fh)
    return {n: found[n][0] for n in chosen}


def build_samples(data: Path, proposals: dict[str, np.ndarray], seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    crops, labels, targets = [], [], []
    for image in load_coco(data / "train.json"):
        if is_held_out(image.file_name):
            continue
        bgr = read_bgr(data / "images" / image.file_name)
        none = np.zeros((0, 4), np.float32)
        c, lab, t = image_samples(bgr, image.boxes, proposals.get(image.file_name, none), rng)
        crops.append(c)
        labels.append(lab)
        targets.append(t)
    return np.concatenate(crops), np.concatenate(labels), np.concatenate(targets)


def train(crops: np.ndarray, labels: np.ndarray, targets: np.ndarray, *, epochs: int, seed: int) -> PlateVerifier:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    model = PlateVerifier()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    batch = 256
    steps = epochs * (len(labels) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps)
    bce = nn.BCEWithLogitsLoss()
    step = 0
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(labels))
        started, total = time.time(), 0.0
        for i in range(len(labels) // batch):
            idx = order[i * batch : (i + 1) * batch]
            x = torch.from_numpy(to_blob(np.stack([augment(crops[j], rng) for j in idx])))
            y = torch.from_numpy(labels[idx])
            t = torch.from_numpy(targets[idx].astype(np.float32))
            logit, box = model(x)
            pos = y > 0.5
            loss = bce(logit, y)
            if pos.any():
                loss = loss + 5.0 * nn.functional.smooth_l1_loss(box[pos], t[pos], beta=0.05)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            step += 1
            total += float(loss.detach())
        mean_loss = total / max(len(labels) // batch, 1)
        print(f"epoch {epoch + 1}/{epochs} loss {mean_loss:.4f} ({time.time() - started:.0f} s)", flush=True)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="plates_train folder (train.json, images/)")
    parser.add_argument("--text-model", type=Path, required=True, help="PP-OCRv6_det_small.onnx")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--proposal-cache", type=Path, default=None)
    parser.add_argument("--proposal-limit", type=int, default=2000, help="images that get text proposals")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    names = [im.file_name for im in load_coco(args.data / "train.json")]
    proposals = text_proposals(args.data, names, args.text_model, args.proposal_cache, args.proposal_limit)
    crops, labels, targets = build_samples(args.data, proposals, args.seed)
    print(f"{len(labels)} samples, {int(labels.sum())} positive", flush=True)
    model = train(crops, labels, targets, epochs=args.epochs, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(model, str(args.out))
    print("sha256", hashlib.sha256(args.out.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
