"""Sub-pixel fold of the output conv: ``conv_k(PixelShuffle_r(y)) == PixelShuffle_r(conv'(y))``.

EDSR and SRResNet end with ``... -> conv -> PixelShuffle(r) [-> PReLU] -> output conv -> add_mean`` at HR
size. The output conv (k x k, C -> 3) reads the shuffled tensor, so it can read the tensor before the shuffle
instead: output pixel (r p + i) sees input pixels r q + j with q = p + floor((i + t - pad) / r), so one conv
with C r^2 inputs, 3 r^2 outputs (output channel o r^2 + i_y r + i_x, PyTorch's PixelShuffle order) and a
kernel of K = floor((r - 1 + k - 1 - pad) / r) - floor(-pad / r) + 1 taps computes every sub-pixel phase,
and the shuffle moves to the network's end. Zero padding matches (an HR position outside the image is an LR
position outside it). A PReLU between shuffle and conv moves before the shuffle (one slope: as is; one slope
per channel: each repeated r^2 times), and add_mean (a per-channel affine) becomes a 3 r^2-channel affine
before the final shuffle. The function is unchanged up to float rounding; what changes is the work:

- no DepthToSpace of C channels at HR size (64 channels at 1024x1024 for a 256x256 x4 input): the shuffle
  at the end moves 3 channels;
- the output conv has 3 r^2 = 12 filters instead of 3 (CPU kernels pad 3 filters to a block of 8 or 16),
  and a 9x9 kernel becomes 5x5 (SRResNet).

Applied by ``fuse_for_deploy`` (deploy form), so calibration, simulation and every emitted graph see the
folded network; the parameter names of the model as trained are kept where the parameter is kept (tail.1 is
the folded output conv, add_mean the widened affine).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def folded_kernel(k: int, pad: int, r: int) -> tuple[int, int]:
    """(K, padding) of the folded conv for a k x k conv with symmetric ``pad`` after a shuffle by r."""
    lo, hi = math.floor(-pad / r), math.floor((r - 1 + k - 1 - pad) / r)
    return hi - lo + 1, -lo


def _tap_map(k: int, pad: int, r: int, big: int) -> torch.Tensor:
    """(r, r, K, k) 0/1 tensor along one axis: output phase i, input phase j, folded tap d read original tap t
    when t = r (d - new_pad) + j - i + pad."""
    lo = -folded_kernel(k, pad, r)[1]
    i, j, d = torch.meshgrid(torch.arange(r), torch.arange(r), torch.arange(big), indexing="ij")
    return (r * (d + lo) + j - i + pad).unsqueeze(-1).eq(torch.arange(k)).to(torch.float64)


def fold_conv_through_shuffle(conv: nn.Conv2d, r: int) -> nn.Conv2d | None:
    """The conv on the tensor before ``PixelShuffle(r)`` that computes ``conv`` after it, followed by
    ``PixelShuffle(r)``; None when ``conv`` is not a plain stride-1 square conv with symmetric padding."""
    k = conv.kernel_size[0]
    if (
        conv.kernel_size != (k, k)
        or not isinstance(conv.padding, tuple)
        or conv.padding[0] != conv.padding[1]
        or conv.stride != (1, 1)
        or conv.dilation != (1, 1)
        or conv.groups != 1
        or conv.padding_mode != "zeros"
    ):
        return None
    pad = int(conv.padding[0])
    big, new_pad = folded_kernel(k, pad, r)
    if big - 1 != 2 * new_pad:  # asymmetric taps: not expressible as one symmetric conv
        return None
    o, c = conv.out_channels, conv.in_channels
    taps = _tap_map(k, pad, r, big)  # each folded weight is exactly one original weight (or 0)
    w = conv.weight.detach()
    out = torch.einsum("octu,ajdt,bkeu->oabcjkde", w.double(), taps, taps).to(w.dtype)
    new = nn.Conv2d(c * r * r, o * r * r, big, padding=new_pad, bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(out.reshape(o * r * r, c * r * r, big, big))
        if conv.bias is not None:
            new.bias.copy_(conv.bias.detach().repeat_interleave(r * r))
    return new


def _widened_prelu(act: nn.PReLU, r: int) -> nn.PReLU:
    if act.num_parameters == 1:
        return act
    new = nn.PReLU(act.num_parameters * r * r)
    with torch.no_grad():
        new.weight.copy_(act.weight.detach().repeat_interleave(r * r))
    return new


def _widened_affine(affine: nn.Conv2d, r: int) -> nn.Conv2d:
    """A 1x1 per-channel affine (diagonal weight) on the shuffled tensor, as one on the tensor before it."""
    a = torch.diagonal(affine.weight.detach()[:, :, 0, 0])
    new = nn.Conv2d(affine.in_channels * r * r, affine.out_channels * r * r, 1)
    with torch.no_grad():
        new.weight.copy_(torch.diag(a.repeat_interleave(r * r))[:, :, None, None])
        new.bias.copy_(affine.bias.detach().repeat_interleave(r * r))
    for p in new.parameters():
        p.requires_grad = False
    return new


def _is_affine(m: nn.Module) -> bool:
    if not isinstance(m, nn.Conv2d) or m.kernel_size != (1, 1) or m.bias is None or m.in_channels != m.out_channels:
        return False
    w = m.weight.detach()[:, :, 0, 0]
    return bool(torch.equal(w, torch.diag(torch.diagonal(w))))


def fold_output_shuffle(net: nn.Module) -> bool:
    """Fold ``net.tail = Sequential(upsampler ending in PixelShuffle [+ PReLU], output conv)`` and
    ``net.add_mean`` through the last shuffle (net.output_shuffle becomes that shuffle). False (unchanged)
    when the network does not have that shape."""
    tail, add_mean = getattr(net, "tail", None), getattr(net, "add_mean", None)
    if not isinstance(tail, nn.Sequential) or len(tail) != 2 or not isinstance(tail[0], nn.Sequential):
        return False
    up, conv = list(tail[0]), tail[1]
    act = up.pop() if up and isinstance(up[-1], nn.PReLU) else None
    shuffle = up.pop() if up and isinstance(up[-1], nn.PixelShuffle) else None
    if shuffle is None or not isinstance(conv, nn.Conv2d) or not _is_affine(add_mean):  # type: ignore[arg-type]
        return False
    r = int(shuffle.upscale_factor)
    folded = fold_conv_through_shuffle(conv, r)
    if folded is None or add_mean.in_channels != conv.out_channels:  # type: ignore[union-attr]
        return False
    net.tail = nn.Sequential(nn.Sequential(*up, *([_widened_prelu(act, r)] if act is not None else [])), folded)
    net.add_mean = _widened_affine(add_mean, r)  # type: ignore[arg-type]
    net.output_shuffle = nn.PixelShuffle(r)
    return True
