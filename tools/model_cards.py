#!/usr/bin/env python
"""Render docs/MODEL_CARDS.md from the cards tools/train_reference.py writes beside each weight
file (srdeploy/zoo/<name>.json): every number comes from those measurements.

    python tools/model_cards.py            # rewrites docs/MODEL_CARDS.md
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def card(doc: dict) -> str:
    t, ev = doc["training"], doc["eval"]
    m = ev["mean"]
    hp = ", ".join(f"{k}={v}" for k, v in doc["hparams"].items())
    lines = [
        f"## {doc['name']}",
        "",
        f"- Architecture: `{doc['architecture']}` ({hp}); weights `srdeploy/zoo/{doc['weights']}` "
        f"({doc['weights_dtype']}, the official implementation's key layout, loads with `srdeploy.load_model`).",
        f"- Training: {t['steps']} steps, batch {t['batch']}, LR patch {t['lr_patch']}, {t['optimizer']}, peak LR "
        f"{t['peak_lr']}, init {t['init'] or 'random'}, seed {t['seed']}; data `{t['data']}` (flips/rotations); "
        f"{t['seconds'] / 60:.1f} min on {t['device']}, torch {t['torch']}, {t['date']}.",
        *[
            f"- Earlier stage (the init above): {s['steps']} steps from {s['init'] or 'random'}, "
            f"{s['seconds'] / 60:.1f} min on {s['device']}; it reached {s['eval_gain_db']:+.2f} dB over bicubic."
            for s in t.get("earlier_stages", [])
        ],
        f"- Evaluation on `calib_data/{ev['set']}` (Y channel, shave = scale, never used for training): "
        f"**Y-PSNR {m['psnr_y']:.2f} dB vs bicubic {m['bicubic_psnr_y']:.2f} dB "
        f"({m['psnr_y'] - m['bicubic_psnr_y']:+.2f} dB)**, SSIM {m['ssim_y']:.4f} vs {m['bicubic_ssim_y']:.4f}.",
        "- Limits: trained for minutes on a few dozen images, not DIV2K; expect far less than the published "
        "models' quality. It exists so every srdeploy number has a real trained model behind it.",
        "",
        "| image | bicubic Y-PSNR | model Y-PSNR | gain | model SSIM |",
        "|---|---|---|---|---|",
    ]
    for r in ev["images"]:
        lines.append(
            f"| {r['image']} | {r['bicubic_psnr_y']:.2f} | {r['psnr_y']:.2f} | "
            f"{r['psnr_y'] - r['bicubic_psnr_y']:+.2f} | {r['ssim_y']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    cards = sorted((ROOT / "srdeploy" / "zoo").glob("*.json"))
    text = [
        "# Model cards",
        "",
        "Reference models trained by `tools/train_reference.py`; regenerate this file with "
        "`python tools/model_cards.py`. Reproduce a model with "
        "`python tools/train_reference.py --model <name> --steps <steps> [--init <x2 weights>]`.",
        "",
    ]
    text += [card(json.loads(p.read_text())) for p in cards]
    out = ROOT / "docs" / "MODEL_CARDS.md"
    out.write_text("\n".join(text))
    print(f"wrote {out} ({len(cards)} models)")


if __name__ == "__main__":
    main()
