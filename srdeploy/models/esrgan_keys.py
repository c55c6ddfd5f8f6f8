"""The ESRGAN repository's two RRDBNet key layouts, renamed to BasicSR's (what ``rrdbnet.py`` builds).

Original release (``architecture.py``/``block.py``: one flattened ``nn.Sequential`` called ``model``;
convs of ``conv_block`` sit at index 0 of their own Sequential)::

    model.0                              -> conv_first
    model.1.sub.{i}.RDB{j}.conv{k}.0     -> body.{i}.rdb{j}.conv{k}     (i < num_block)
    model.1.sub.{num_block}              -> conv_body                  (inside the ShortcutBlock)
    model.{3 + 3s}                       -> conv_up{s + 1}             (Upsample, conv, LeakyReLU per stage)
    model.{2 + 3n}, model.{4 + 3n}       -> conv_hr, conv_last         (n upsampling stages; n = 2: 8, 10)

Later ``RRDBNet_arch.py`` (the layout ``transer_RRDB_models.py`` converts to)::

    RRDB_trunk.{i}.RDB{j}.conv{k} -> body.{i}.rdb{j}.conv{k};  trunk_conv -> conv_body;
    upconv{s} -> conv_up{s};  HRconv -> conv_hr;  conv_first, conv_last unchanged.

Only the ``upconv`` (nearest + conv) upsampler of the original code is mapped: its pixel-shuffle
and x3 variants put other modules at those indices and are refused with what was found.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from srdeploy.errors import ModelError

_OLD_RDB = re.compile(r"model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)")
_OLD_TOP = re.compile(r"model\.(\d+)\.(weight|bias)")
_OLD_TRUNK = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)")
_MID_RDB = re.compile(r"RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(weight|bias)")
_MID_RENAMES = {"trunk_conv": "conv_body", "HRconv": "conv_hr", "upconv1": "conv_up1", "upconv2": "conv_up2"}
_MID_RENAMES |= {"upconv3": "conv_up3", "conv_first": "conv_first", "conv_last": "conv_last"}


def convert_esrgan_layout(sd: Mapping[str, Any]) -> dict[str, Any] | None:
    """BasicSR-named copy of an ESRGAN-layout state dict; None when ``sd`` is in neither layout."""
    if "model.0.weight" in sd and "model.1.sub.0.RDB1.conv1.0.weight" in sd:
        return _convert_original(sd)
    if "RRDB_trunk.0.RDB1.conv1.weight" in sd and "trunk_conv.weight" in sd:
        return _convert_rrdbnet_arch(sd)
    return None


def _convert_original(sd: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    top: dict[int, dict[str, Any]] = {}
    trunk: dict[int, dict[str, Any]] = {}
    unknown = []
    for key, value in sd.items():
        if m := _OLD_RDB.fullmatch(key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        elif m := _OLD_TRUNK.fullmatch(key):
            trunk.setdefault(int(m[1]), {})[m[2]] = value
        elif m := _OLD_TOP.fullmatch(key):
            top.setdefault(int(m[1]), {})[m[2]] = value
        else:
            unknown.append(key)
    if unknown:
        raise ModelError(
            f"old-ESRGAN checkpoint has keys outside the RRDB_Net layout: {sorted(unknown)[:4]}",
            "only the upconv RRDB_Net of ESRGAN's architecture.py is supported; try model.arch: spandrel",
        )
    if len(trunk) != 1:
        raise ModelError(
            f"old-ESRGAN checkpoint has {len(trunk)} trunk convs (model.1.sub.N.weight for N in {sorted(trunk)})",
            "expected exactly one, after the last RRDB block (model.1.sub.<num_block>)",
        )
    (conv_body,) = trunk.values()
    _put(out, "conv_body", conv_body)
    _put(out, "conv_first", top.pop(0, {}))
    for name, tensors in zip(_top_level_names(sorted(top)), (top[i] for i in sorted(top)), strict=True):
        _put(out, name, tensors)
    return out


def _top_level_names(indices: list[int]) -> list[str]:
    """Names of the convs after the trunk, from their Sequential indices (upconv stages of 3 modules)."""
    if not indices or (indices[-1] - 4) % 3 or indices[-1] < 4:
        raise ModelError(
            f"old-ESRGAN checkpoint has convs after the trunk at model.{indices}",
            "expected model.3, 6, ... (upconv stages), then HR convs at model.3n+2 and model.3n+4",
        )
    n = (indices[-1] - 4) // 3
    expected = [3 + 3 * s for s in range(n)] + [2 + 3 * n, 4 + 3 * n]
    if indices != expected:
        raise ModelError(
            f"old-ESRGAN checkpoint has convs after the trunk at model.{indices}, expected model.{expected}",
            "the pixel-shuffle and x3 variants of ESRGAN's RRDB_Net are not supported; try model.arch: spandrel",
        )
    return [f"conv_up{s + 1}" for s in range(n)] + ["conv_hr", "conv_last"]


def _put(out: dict[str, Any], name: str, tensors: Mapping[str, Any]) -> None:
    for kind, value in tensors.items():
        out[f"{name}.{kind}"] = value


def _convert_rrdbnet_arch(sd: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sd.items():
        if m := _MID_RDB.fullmatch(key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
            continue
        module, _, kind = key.rpartition(".")
        if module not in _MID_RENAMES:
            raise ModelError(
                f"ESRGAN RRDBNet checkpoint has an unexpected key '{key}'",
                "expected conv_first, RRDB_trunk.N.RDB{1,2,3}.conv{1..5}, trunk_conv, upconv1/2, HRconv, conv_last",
            )
        out[f"{_MID_RENAMES[module]}.{kind}"] = value
    return out
