#!/usr/bin/env python
"""Train srdeploy's reference SR models on calib_data/train (L1, Adam, random crops, flips/rotations).

Self-contained apart from srdeploy's torch-only model and data modules, so it runs on any machine
with PyTorch, NumPy and Pillow. Uses CUDA when present, else the CPU with bf16 autocast.

    python tools/train_reference.py --model edsr_baseline_x2 --minutes 60
    python tools/train_reference.py --model edsr_baseline_x4 --init srdeploy/zoo/edsr_baseline_x2.safetensors

Writes srdeploy/zoo/<model>.safetensors (fp16) and <model>.json (the model card data).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from srdeploy.data.degrade import bicubic_upscale  # noqa: E402
from srdeploy.data.sets import load_pairs  # noqa: E402
from srdeploy.models.loading import load_state_dict, save_checkpoint  # noqa: E402
from srdeploy.models.registry import get_architecture  # noqa: E402
from srdeploy.models.zoo import REFERENCE_MODELS  # noqa: E402
from srdeploy.validate.metrics import psnr_y, ssim_y  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=sorted(REFERENCE_MODELS))
    p.add_argument("--steps", type=int, default=3000, help="training steps (the LR schedule spans them)")
    p.add_argument("--minutes", type=float, default=600.0, help="wall-clock safety stop")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=32, help="LR patch size")
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--init", type=Path, help="checkpoint whose matching tensors initialise the model")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-set", default="train")
    p.add_argument("--eval-set", default="eval")
    p.add_argument("--out", type=Path, default=ROOT / "srdeploy" / "zoo")
    p.add_argument("--no-bf16", action="store_true", help="disable bf16 autocast on the CPU")
    return p.parse_args()


class PatchSampler:
    """Random aligned LR/HR crops with the 8 dihedral augmentations."""

    def __init__(self, set_name: str, scale: int, patch: int, seed: int) -> None:
        pairs = [p for p in load_pairs(set_name, scale) if min(p.lr.shape[:2]) >= patch]
        self.lr = [torch.from_numpy(p.lr).permute(2, 0, 1).contiguous() for p in pairs]
        self.hr = [torch.from_numpy(p.hr).permute(2, 0, 1).contiguous() for p in pairs]
        self.weights = np.array([lr.shape[1] * lr.shape[2] for lr in self.lr], dtype=np.float64)
        self.weights /= self.weights.sum()
        self.scale, self.patch = scale, patch
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        lrs, hrs = [], []
        s, p = self.scale, self.patch
        for _ in range(n):
            i = int(self.rng.choice(len(self.lr), p=self.weights))
            lr, hr = self.lr[i], self.hr[i]
            y = int(self.rng.integers(lr.shape[1] - p + 1))
            x = int(self.rng.integers(lr.shape[2] - p + 1))
            a = lr[:, y : y + p, x : x + p]
            b = hr[:, y * s : (y + p) * s, x * s : (x + p) * s]
            k = int(self.rng.integers(8))
            if k & 1:
                a, b = a.flip(2), b.flip(2)
            if k & 2:
                a, b = a.flip(1), b.flip(1)
            if k & 4:
                a, b = a.transpose(1, 2), b.transpose(1, 2)
            lrs.append(a)
            hrs.append(b)
        return torch.stack(lrs), torch.stack(hrs)


def evaluate(model: torch.nn.Module, set_name: str, scale: int, device: torch.device) -> dict:
    rows = []
    model.eval()
    with torch.no_grad():
        for pair in load_pairs(set_name, scale):
            x = torch.from_numpy(pair.lr).permute(2, 0, 1)[None].to(device)
            sr = model(x).float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
            bic = bicubic_upscale(pair.lr, scale)
            rows.append(
                dict(
                    image=pair.name,
                    psnr_y=psnr_y(sr, pair.hr, scale),
                    ssim_y=ssim_y(sr, pair.hr, scale),
                    bicubic_psnr_y=psnr_y(bic, pair.hr, scale),
                    bicubic_ssim_y=ssim_y(bic, pair.hr, scale),
                )
            )
    model.train()
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "image"}
    return dict(set=set_name, images=rows, mean=mean)


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    arch_name, hparams = REFERENCE_MODELS[args.model]
    scale = int(hparams["scale"])
    model = get_architecture(arch_name).build(**hparams)
    if args.init:
        src = load_state_dict(args.init)
        own = model.state_dict()
        taken = {k: v.float() for k, v in src.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(taken, strict=False)
        print(f"initialised {len(taken)}/{len(own)} tensors from {args.init}")
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    model.to(device).train()
    sampler = PatchSampler(args.train_set, scale, args.patch, args.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.99))
    amp_dtype = torch.bfloat16 if (cuda or not args.no_bf16) else None
    budget = args.minutes * 60.0
    t0 = time.time()
    step, ema_loss = 0, None
    # Cosine decay over the requested steps (not over a time estimate: a busy machine would
    # otherwise shrink the schedule and leave most of the run at the floor learning rate).
    while step < args.steps:
        if time.time() - t0 > budget:
            break
        frac = min(1.0, step / max(args.steps, 1))
        lr = args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac))) * min(1.0, (step + 1) / 100)
        for g in opt.param_groups:
            g["lr"] = lr
        lr_b, hr_b = sampler.batch(args.batch)
        lr_b, hr_b = lr_b.to(device), hr_b.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            sr = model(lr_b)
        loss = F.l1_loss(sr.float(), hr_b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        value = loss.item()
        ema_loss = value if ema_loss is None else 0.98 * ema_loss + 0.02 * value
        if step % 100 == 0:
            rate = step / (time.time() - t0)
            print(f"step {step} loss {ema_loss:.4f} lr {lr:.2e} {rate:.2f} it/s", flush=True)
    train_seconds = time.time() - t0
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    weights = save_checkpoint(model.cpu(), args.out / f"{args.model}.safetensors", half=True)
    # Evaluate the shipped (fp16-rounded) weights, as users will load them.
    from srdeploy.models.loading import load_model

    shipped = load_model(weights).module
    result = evaluate(shipped, args.eval_set, scale, torch.device("cpu"))
    card = dict(
        name=args.model,
        architecture=arch_name,
        hparams=hparams,
        weights=weights.name,
        weights_dtype="float16",
        training=dict(
            data=f"calib_data/{args.train_set}",
            steps=step,
            batch=args.batch,
            lr_patch=args.patch,
            optimizer="Adam(betas=(0.9, 0.99)), cosine decay, L1 loss",
            peak_lr=args.lr,
            init=str(args.init.name) if args.init else None,
            seconds=round(train_seconds, 1),
            device=torch.cuda.get_device_name(0)
            if cuda
            else f"CPU ({platform.processor() or platform.machine()}), "
            f"{torch.get_num_threads()} threads, bf16 autocast={amp_dtype is not None}",
            torch=torch.__version__,
            seed=args.seed,
            date=time.strftime("%Y-%m-%d"),
        ),
        eval=result,
    )
    (args.out / f"{args.model}.json").write_text(json.dumps(card, indent=2) + "\n")
    m = result["mean"]
    print(
        f"{args.model}: {step} steps in {train_seconds / 60:.1f} min; eval Y-PSNR {m['psnr_y']:.2f} dB "
        f"(bicubic {m['bicubic_psnr_y']:.2f}, +{m['psnr_y'] - m['bicubic_psnr_y']:.2f} dB), "
        f"SSIM {m['ssim_y']:.4f} (bicubic {m['bicubic_ssim_y']:.4f})"
    )


if __name__ == "__main__":
    main()
