from __future__ import annotations

from pathlib import Path

import pytest

from srdeploy.errors import RecipeError
from srdeploy.recipe import load_recipe, recipe_from_dict

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_every_bundled_recipe_validates() -> None:
    recipes = sorted((REPO / "recipes").glob("*.yaml"))
    assert recipes
    for path in recipes:
        r = load_recipe(path)
        assert r.name == path.stem
        assert len(r.digest) == 16


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"quant\.bitz"):
        load_recipe(write(tmp_path, "model: {name: edsr_baseline_x4}\nquant: {bitz: 4}\n"))


def test_out_of_range_and_wrong_type(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"quant\.act_bits"):
        load_recipe(write(tmp_path, "model: {name: x}\nquant: {act_bits: 12}\n"))
    with pytest.raises(RecipeError, match=r"calib\.patches"):
        load_recipe(write(tmp_path, "model: {name: x}\ncalib: {patches: many}\n"))


def test_sensitivity_keys_without_the_sensitivity_map_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"layer_extra_bits.*layer_map: sensitivity"):
        load_recipe(write(tmp_path, "model: {name: x}\nquant: {adaptive: {enabled: true, layer_extra_bits: 0.5}}\n"))
    ok = "model: {name: x}\nquant: {adaptive: {layer_map: sensitivity, layer_extra_bits: 0.5, layer_patches: 4}}\n"
    assert load_recipe(write(tmp_path, ok)).quant.adaptive.layer_patches == 4


def test_malformed_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(write(tmp_path, "model: {name: [x\n"))
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "nope.yaml")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(write(tmp_path, "- a\n- b\n"))


def test_model_source_must_be_exactly_one() -> None:
    with pytest.raises(RecipeError, match="exactly one"):
        recipe_from_dict({"name": "x", "model": {"name": "a", "path": "b"}})


def test_overrides_and_digest(tmp_path: Path) -> None:
    path = write(tmp_path, "model: {name: edsr_baseline_x4}\n")
    a = load_recipe(path)
    b = load_recipe(path, ["quant.act_bits=6", "quant.quantize_roles=[body, tail]"])
    assert b.quant.act_bits == 6 and b.quant.quantize_roles == ("body", "tail")
    assert a.digest != b.digest
    assert load_recipe(path).digest == a.digest
    with pytest.raises(RecipeError, match=r"key\.path=value"):
        load_recipe(path, ["quant.act_bits"])


def test_resolved_recipe_round_trips(tmp_path: Path) -> None:
    r = load_recipe(write(tmp_path, "model: {name: edsr_baseline_x4}\nvalidate: {dataset: eval}\n"))
    again = load_recipe(write(tmp_path, r.to_yaml()))
    assert again == r and again.digest == r.digest


def test_every_bundled_recipe_gates_the_worst_image() -> None:
    """Issue 12: a mean hides the image that breaks; every bundled recipe gates the worst one too."""
    recipes = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
    assert len(recipes) >= 9
    for path in recipes:
        t = load_recipe(path).validate_.thresholds
        assert t.max_image_psnr_drop_db is not None, f"{path.name}: no validate.thresholds.max_image_psnr_drop_db"
        if t.max_psnr_drop_db is not None:
            assert t.max_image_psnr_drop_db >= t.max_psnr_drop_db, path.name
