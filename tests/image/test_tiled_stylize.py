"""The image front end with tiles: chosen where the untiled run would not fit, the same result as untiled, the
coarse scales untiled and the fine ones tiled, a history that fits under image_size auto, and bad tile values."""

from __future__ import annotations

import pytest

from nst_core.errors import ConfigError, ResourceError
from nst_image import VGGFeatures, stylize_image
from nst_image.io import load_image, resize_to
from nst_image.memory import estimate_memory_bytes, plan_memory

from helpers import kaiming_vgg


def kaiming_vgg16() -> VGGFeatures:
    return kaiming_vgg("vgg16")


@pytest.fixture(scope="module")
def pictures(demo_inputs):
    content = resize_to(load_image(demo_inputs["content_landscape"]), (150, 200))
    style = resize_to(load_image(demo_inputs["style_swirls"]), (150, 200))
    return content, style


def _need(h, w, tile=None, **kw):
    return estimate_memory_bytes(h, w, arch="vgg16", deepest="relu3_1", content_layers=("relu2_2",), tile=tile,
                                 style_shapes=[(h, w)], **kw)


# Shallow layers (a 12 px halo) keep the pictures small enough for quick tests and the tiles much smaller than them.
RUN = dict(iterations=6, tolerance=0, device="cpu", precision="fp32", seed=0, image_size=200,
           content_layers=("relu2_2",), style_layers=("relu1_1", "relu2_1", "relu3_1"))


def test_tiles_where_the_untiled_run_would_not_fit_and_the_result_is_the_same(pictures, hed_extractor):
    content, style = pictures
    ex = hed_extractor
    untiled_need, tiled_need = _need(150, 200), _need(150, 200, tile=128)
    assert tiled_need < untiled_need
    said = []
    tiled = stylize_image(content, style, extractor=ex, memory_limit=(tiled_need + untiled_need) // 2,
                          log=said.append, **RUN)
    assert tiled.trace["tiles"] == [128] and any("in tiles of 128 px" in m for m in said)
    assert "in tiles of 128 px" in tiled.trace["runs"][0]["segment"]
    plain = stylize_image(content, style, extractor=ex, memory_limit=1 << 62, **RUN)
    assert plain.trace["tiles"] == [None]
    a, b = plain.trace["runs"][0]["trace"]["total"], tiled.trace["runs"][0]["trace"]["total"]
    assert a[-1] < 0.98 * a[0]  # the run did something (measured: 4 % lower after 6 steps)
    assert b == pytest.approx(a, rel=1e-4)
    assert float((plain.image - tiled.image).abs().max()) < 2e-3
    assert tiled.metrics["style"]["gram_distance_result"] == pytest.approx(
        plain.metrics["style"]["gram_distance_result"], rel=1e-4)


def test_coarse_scales_untiled_fine_ones_tiled(pictures):
    content, style = pictures
    limit = (_need(150, 200, tile=128) + _need(150, 200)) // 2
    assert _need(75, 100) < limit  # the coarse scale fits untiled
    r = stylize_image(content, style, extractor=kaiming_vgg16(), memory_limit=limit, scales=(100,),
                      **{**RUN, "iterations": 2})
    assert r.trace["tiles"] == [None, 128]
    assert [run["size"] for run in r.trace["runs"]] == [[100, 75], [200, 150]]


def test_image_size_auto_keeps_the_size_with_a_smaller_history(pictures):
    """A picture that does not fit with 100 fp32 pairs even in the smallest tiles keeps its size under
    image_size auto (a bf16 or shorter history); an explicit size refuses and says so."""
    content, style = pictures
    limit = _need(150, 200, tile=64) - 1  # 64 px: the smallest tile the plan tries for this picture and layers
    said = []
    r = stylize_image(content, style, extractor=kaiming_vgg16(), memory_limit=int(limit / 0.9), log=said.append,
                      **{**RUN, "image_size": "auto", "iterations": 2})
    assert r.image.shape == (3, 150, 200)
    opt = r.trace["settings"]["optimize"]
    chosen = (opt["history_precision"], opt["history_size"])
    assert chosen != ("fp32", 100)
    assert any(f"L-BFGS history {chosen[1]} pairs in {chosen[0]}" in m for m in said)
    assert r.trace["estimated_peak_bytes"] <= limit
    with pytest.raises(ResourceError, match=r"image_size auto \(200 px with a smaller L-BFGS history\)"):
        stylize_image(content, style, extractor=kaiming_vgg16(), memory_limit=limit, **{**RUN, "iterations": 1})


def test_a_fixed_tile_is_used_and_checked(pictures):
    content, style = pictures
    r = stylize_image(content, style, extractor=kaiming_vgg16(), tile=64, **{**RUN, "iterations": 2})
    assert r.trace["tiles"] == [64]
    deep = {**RUN, "content_layers": ("relu4_2",), "style_layers": ("relu1_1", "relu5_1")}
    with pytest.raises(ConfigError, match=r"tile 64 px is smaller than the receptive field of relu5_1 in vgg16 "
                                          r"\(128 px\); use at least 128 px, or auto"):
        stylize_image(content, style, extractor=kaiming_vgg16(), tile=64, **deep)
    with pytest.raises(ConfigError, match="tile must be a whole number >= 16"):
        stylize_image(content, style, extractor=kaiming_vgg16(), tile=0, **RUN)


def test_plan_prefers_big_tiles_and_full_history_then_gives_up():
    shapes, styles = [(4096, 4096)], [[(4096, 4096)]]
    common = dict(arch="vgg19", deepest="relu5_1", content_layers=("relu4_2",), precision="bf16", optimizer="lbfgs",
                  history=[("fp32", 100), ("bf16", 100), ("bf16", 50), ("bf16", 20), ("bf16", 10)])
    plan = plan_memory(shapes, styles, tile="auto", have=int(0.9 * 22 * 2**30), **common)
    assert plan is not None and plan.tiles[0] is not None and plan.tiles[0] >= 512
    assert plan.history_precision == "bf16" and 20 <= plan.history_size <= 50  # 100 pairs do not fit at 4096 px
    assert plan.need <= 0.9 * 22 * 2**30
    assert plan_memory(shapes, styles, tile="auto", have=2 * 2**30, **common) is None
    roomy = plan_memory(shapes, styles, tile="auto", have=1 << 50, **common)
    assert roomy.tiles == (None,) and roomy.history_size == 100 and roomy.history_precision == "fp32"
