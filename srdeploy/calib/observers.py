"""Observers: PyTorch hooks that record statistics of every quantization-site tensor while the
fp32 model runs on calibration patches."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from srdeploy.models.common import ResidualAdd
from srdeploy.quant import sites

EMA_MOMENTUM = 0.9


@dataclass(frozen=True, eq=False)
class SiteStats:
    """Statistics of one site's tensor over the calibration set.

    ``sample`` holds (C, k) values drawn uniformly from each channel, so per-channel transforms
    (equalization) can be applied to it; ``img_std`` is the std of the whole tensor per patch.
    """

    site: str
    channels: int
    min: float
    max: float
    ema_min: float
    ema_max: float
    ch_mean: np.ndarray
    ch_std: np.ndarray
    ch_min: np.ndarray
    ch_max: np.ndarray
    img_std: np.ndarray
    sample: np.ndarray

    @property
    def nonnegative(self) -> bool:
        return self.min >= 0.0

    def flat_sample(self) -> np.ndarray:
        return self.sample.reshape(-1)


@dataclass(frozen=True, eq=False)
class _Batch:
    """One batch of one tensor, reduced once: sites that see the same tensor share it."""

    lo: float
    hi: float
    s1: torch.Tensor
    s2: torch.Tensor
    cmin: torch.Tensor
    cmax: torch.Tensor
    img_std: np.ndarray


def _batch_stats(raw: torch.Tensor, cache: dict | None) -> _Batch:
    # Keyed by identity and version (in-place ops such as ReLU(inplace) change a tensor), checked through
    # a weak reference: a freed tensor's id can be reused.
    key = (id(raw), raw._version)
    hit = None if cache is None else cache.get(key)
    if hit is not None and hit[0]() is raw:
        return hit[1]
    x = raw.detach().float()
    n, c = x.shape[0], x.shape[1]
    per_image = x.reshape(n, c, -1)  # a view: no copy, reductions along the contiguous axis
    m = per_image.shape[2]
    # float32 sums over one (image, channel) plane, float64 from there on
    sums, squares = per_image.sum(-1).double(), (per_image * per_image).sum(-1).double()
    pmin, pmax = torch.aminmax(per_image, dim=-1)
    cmin, cmax = pmin.amin(0), pmax.amax(0)
    img_n = c * m
    img_var = (squares.sum(1) - sums.sum(1) ** 2 / img_n) / max(img_n - 1, 1)
    out = _Batch(
        lo=float(cmin.min()),
        hi=float(cmax.max()),
        s1=sums.sum(0),
        s2=squares.sum(0),
        cmin=cmin,
        cmax=cmax,
        img_std=img_var.clamp_min(0).sqrt().float().numpy(),
    )
    if cache is not None:
        cache[key] = (weakref.ref(raw), out)
    return out


class _Accumulator:
    def __init__(self, site: str, per_channel_sample: int, seed: int) -> None:
        self.site = site
        self.k = per_channel_sample
        self.gen = torch.Generator().manual_seed(seed)
        self.min = np.inf
        self.max = -np.inf
        self.ema_min: float | None = None
        self.ema_max: float | None = None
        self.s1: torch.Tensor | None = None
        self.s2: torch.Tensor | None = None
        self.cmin: torch.Tensor | None = None
        self.cmax: torch.Tensor | None = None
        self.count = 0
        self.img_std: list[np.ndarray] = []
        self.samples: list[torch.Tensor] = []

    def update(self, raw: torch.Tensor, cache: dict | None = None) -> None:
        b = _batch_stats(raw, cache)
        x = raw.detach().float()
        self.min, self.max = min(self.min, b.lo), max(self.max, b.hi)
        if self.ema_min is None or self.ema_max is None:
            self.ema_min, self.ema_max = b.lo, b.hi
        else:
            self.ema_min = EMA_MOMENTUM * self.ema_min + (1 - EMA_MOMENTUM) * b.lo
            self.ema_max = EMA_MOMENTUM * self.ema_max + (1 - EMA_MOMENTUM) * b.hi
        if self.s1 is None or self.s2 is None or self.cmin is None or self.cmax is None:
            self.s1, self.s2, self.cmin, self.cmax = b.s1, b.s2, b.cmin, b.cmax
        else:
            self.s1, self.s2 = self.s1 + b.s1, self.s2 + b.s2
            self.cmin, self.cmax = torch.minimum(self.cmin, b.cmin), torch.maximum(self.cmax, b.cmax)
        n, c = x.shape[0], x.shape[1]
        per_image = x[0, 0].numel()
        self.count += n * per_image
        self.img_std.append(b.img_std)
        # column j of the (C, N*H*W) view of x: image j // (H*W), pixel j % (H*W)
        idx = torch.randint(n * per_image, (self.k,), generator=self.gen)
        self.samples.append(x.reshape(n, c, per_image)[idx // per_image, :, idx % per_image].t())

    def finish(self, total_batches: int) -> SiteStats:
        assert self.s1 is not None and self.s2 is not None and self.cmin is not None and self.cmax is not None
        mean = (self.s1 / self.count).numpy()
        var = np.maximum((self.s2 / self.count).numpy() - mean**2, 0.0)
        # Keep about k values per channel overall: thin the per-batch draws.
        sample = torch.cat(self.samples, 1)
        if sample.shape[1] > self.k:
            keep = torch.randperm(sample.shape[1], generator=self.gen)[: self.k]
            sample = sample[:, keep.sort().values]
        return SiteStats(
            site=self.site,
            channels=int(mean.shape[0]),
            min=float(self.min),
            max=float(self.max),
            ema_min=float(self.ema_min if self.ema_min is not None else self.min),
            ema_max=float(self.ema_max if self.ema_max is not None else self.max),
            ch_mean=mean.astype(np.float32),
            ch_std=np.sqrt(var).astype(np.float32),
            ch_min=self.cmin.numpy().astype(np.float32),
            ch_max=self.cmax.numpy().astype(np.float32),
            img_std=np.concatenate(self.img_std).astype(np.float32),
            sample=sample.numpy().astype(np.float32),
        )


def candidate_sites(module: nn.Module, conv_weights: Iterable[str]) -> list[str]:
    """Input and output site of every given conv, and the skip site of every ResidualAdd."""
    out = []
    for w in conv_weights:
        out += [sites.site(w, sites.INPUT), sites.site(w, sites.OUTPUT)]
    for name, m in module.named_modules():
        if isinstance(m, ResidualAdd):
            out.append(sites.site(name, sites.SKIP))
    return sorted(out)


def observe(
    module: nn.Module,
    site_names: Iterable[str],
    patches: np.ndarray,
    batch_size: int = 8,
    per_channel_sample: int = 4096,
    seed: int = 0,
    progress: object | None = None,
) -> dict[str, SiteStats]:
    """Run ``module`` on ``patches`` (N,3,h,w) and return statistics per site."""
    # One seed for every site: sites that see the same tensor draw the same sample and get equal ranges.
    accs = {s: _Accumulator(s, per_channel_sample, seed) for s in sorted(site_names)}
    handles = []
    cache: dict = {}  # per batch: tensor -> its reduced statistics
    named = dict(module.named_modules())
    for site_name, acc in accs.items():
        key, kind = sites.parse(site_name)
        if kind == sites.SKIP:
            mod = named[key]
            handles.append(mod.register_forward_pre_hook(lambda _m, a, acc=acc: acc.update(a[1], cache)))
        else:
            mod = named[sites.module_of(key)]
            if kind == sites.INPUT:
                handles.append(mod.register_forward_pre_hook(lambda _m, a, acc=acc: acc.update(a[0], cache)))
            else:
                handles.append(mod.register_forward_hook(lambda _m, _a, out, acc=acc: acc.update(out, cache)))
    batches = 0
    try:
        with torch.no_grad():
            for start in range(0, len(patches), batch_size):
                cache.clear()
                module(torch.from_numpy(patches[start : start + batch_size]))
                batches += 1
                if callable(progress):
                    progress(min(start + batch_size, len(patches)))
    finally:
        for h in handles:
            h.remove()
    return {s: acc.finish(batches) for s, acc in accs.items()}
