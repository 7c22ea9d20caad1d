"""stylize_image end to end: quality with pretrained features, colours, multi-scale, blending, seeds."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from nst_core import InputError, ResourceError, resolve_precision
from nst_image import ImageStyleConfig, VGGFeatures, estimate_memory_bytes, load_image, scale_schedule, stylize_image
from nst_image.color import luminance, rgb_to_yuv, transfer_chroma, yuv_to_rgb
from nst_image.io import resize_long_side, resize_to


def _random_vgg(arch="vgg16"):
    torch.manual_seed(0)
    return VGGFeatures(arch)


def _low_freq_corr(a, b, k=8):
    x = F.avg_pool2d(luminance(a[None]), k).flatten()
    y = F.avg_pool2d(luminance(b[None]), k).flatten()
    x, y = x - x.mean(), y - y.mean()
    return float(x @ y / (x.norm() * y.norm()))


def _ssim_lum(a, b, k=7):
    x, y = luminance(a[None]), luminance(b[None])
    mx, my = F.avg_pool2d(x, k, 1), F.avg_pool2d(y, k, 1)
    sxx = F.avg_pool2d(x * x, k, 1) - mx**2
    syy = F.avg_pool2d(y * y, k, 1) - my**2
    sxy = F.avg_pool2d(x * y, k, 1) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return float((((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))).mean())


@pytest.mark.pretrained
@pytest.mark.slow
def test_pretrained_style_transfer_quality(hed_extractor, demo_inputs):
    """Offline VGG-16 at 128 px, 60 L-BFGS steps.

    Measured on a 2-core CPU: style loss falls 31x (0.81 -> 0.026); luminance SSIM against the content
    0.36 (the style image scores 0.07); low-frequency luminance correlation 0.99 (style image 0.46).
    Thresholds leave margin: >= 10x, SSIM >= 3x the style's and >= 0.2, correlation >= 0.9.
    """
    result = stylize_image(demo_inputs["content_landscape"], [demo_inputs["style_swirls"]],
                           extractor=hed_extractor, image_size=128, iterations=60, seed=0)
    style = result.trace["runs"][-1]["trace"]["style"]
    assert style[0] / min(style) >= 10
    content = resize_long_side(load_image(demo_inputs["content_landscape"]), 128)
    style_img = resize_to(resize_long_side(load_image(demo_inputs["style_swirls"]), 128), content.shape[-2:])
    assert result.image.shape == content.shape
    ssim_result, ssim_style = _ssim_lum(result.image, content), _ssim_lum(style_img, content)
    assert ssim_result >= 0.2 and ssim_result >= 3 * ssim_style
    assert _low_freq_corr(result.image, content) >= 0.9
    # The result moved away from the content towards the style's statistics.
    assert (result.image - content).abs().mean() > 0.05
    # The trace's metrics say the same: nearer the style's Gram statistics than the content is, and
    # structure kept (measured: Gram distance 0.025 vs the content's 0.78; Gaussian-window SSIM 0.32 vs the style's 0.07).
    m = result.trace["metrics"]
    assert m["style"]["gram_distance_result"] < 0.5 * m["style"]["gram_distance_content"]
    assert m["content"]["ssim_luminance_result"] >= 3 * m["content"]["ssim_luminance_style"]


def test_runs_and_reduces_loss_with_both_optimizers(demo_inputs):
    ext = _random_vgg()
    for optimizer, steps in (("lbfgs", 15), ("adam", 40)):
        r = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=ext,
                          image_size=48, iterations=steps, optimizer=optimizer, seed=1, device="cpu")
        total = r.trace["runs"][0]["trace"]["total"]
        assert min(total) < 0.5 * total[0], (optimizer, total[0], min(total))
        assert 0 <= float(r.image.min()) and float(r.image.max()) <= 1


def test_seed_makes_noise_init_reproducible(demo_inputs):
    ext = _random_vgg()
    kw = dict(extractor=ext, image_size=40, iterations=5, init="noise", device="cpu")
    a = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], seed=3, **kw)
    b = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], seed=3, **kw)
    c = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], seed=4, **kw)
    assert torch.equal(a.image, b.image)
    assert not torch.equal(a.image, c.image)


def test_blend_weights_select_the_style(demo_inputs):
    """Blend weights 1,0 give the same result as the first style alone."""
    ext = _random_vgg()
    kw = dict(extractor=ext, image_size=40, iterations=5, seed=0, device="cpu")
    s1, s2 = demo_inputs["style_swirls"], demo_inputs["style_mosaic"]
    only = stylize_image(demo_inputs["content_landscape"], [s1], **kw)
    blend = stylize_image(demo_inputs["content_landscape"], [s1, s2], style_blend_weights=(1.0, 0.0), **kw)
    mixed = stylize_image(demo_inputs["content_landscape"], [s1, s2], style_blend_weights=(0.5, 0.5), **kw)
    assert torch.allclose(only.image, blend.image, atol=1e-5)
    assert not torch.allclose(only.image, mixed.image, atol=1e-3)


def test_blend_weight_count_must_match(demo_inputs):
    with pytest.raises(InputError, match="2 style images"):
        stylize_image(demo_inputs["content_landscape"], [demo_inputs["style_swirls"], demo_inputs["style_mosaic"]],
                      extractor=_random_vgg(), style_blend_weights=(1.0,), image_size=32, iterations=1)


def test_original_colors_keep_content_chroma(demo_inputs):
    ext = _random_vgg()
    content = resize_long_side(load_image(demo_inputs["content_landscape"]), 48)
    for mode in ("chroma", "luminance"):
        r = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=ext,
                          image_size=48, iterations=8, original_colors=mode, seed=0, device="cpu")
        uv_r, uv_c = rgb_to_yuv(r.image)[1:], rgb_to_yuv(content)[1:]
        # Chroma equals the content's except where clamping to [0, 1] bites (measured mean error < 0.01).
        assert (uv_r - uv_c).abs().mean() < 0.02, mode
    plain = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=ext,
                          image_size=48, iterations=8, seed=0, device="cpu")
    assert (rgb_to_yuv(plain.image)[1:] - rgb_to_yuv(content)[1:]).abs().mean() > 0.02


def test_yuv_round_trip_and_chroma_transfer():
    x = torch.rand(3, 8, 9)
    assert torch.allclose(yuv_to_rgb(rgb_to_yuv(x)), x, atol=1e-5)
    y = torch.rand(3, 8, 9)
    out = transfer_chroma(y, y)
    assert torch.allclose(out, y, atol=1e-5)


def test_multi_scale_schedule_and_run(demo_inputs):
    assert scale_schedule(512) == [512]
    assert scale_schedule(1024) == [1024]
    assert scale_schedule(2047) == [2047]
    assert scale_schedule(2048) == [1024, 2048]
    assert scale_schedule(4096) == [1024, 2048, 4096]
    assert scale_schedule(100, [32, 64]) == [32, 64, 100]
    r = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=_random_vgg(),
                      image_size=64, scales=(32,), iterations=4, seed=0, device="cpu")
    runs = r.trace["runs"]
    assert [max(run["size"]) for run in runs] == [32, 64]
    assert r.image.shape == (3, 48, 64)
    # The second scale starts from the upsampled first result, not from the content: its first content loss is > 0.
    assert runs[1]["trace"]["content"][0] > 0


def test_trace_records_every_setting_and_step(demo_inputs, tmp_path):
    r = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=_random_vgg(),
                      image_size=32, iterations=6, seed=0, device="cpu")
    out = r.save(tmp_path / "out.png")
    doc = json.loads((tmp_path / "out.trace.json").read_text())
    assert out.exists() and doc["format"] == "nst-trace/2" and doc["modality"] == "image"
    assert set(doc["settings"]) == set(ImageStyleConfig.__dataclass_fields__)
    run = doc["runs"][0]
    assert len(run["trace"]["style"]) == 6 and run["steps_run"] == 6
    assert doc["precision"] == resolve_precision("auto", torch.device("cpu")) and doc["device"].startswith("cpu") and doc["peak_memory_bytes"] > 0


def test_intermediate_images(demo_inputs):
    seen = []
    stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=_random_vgg(),
                  image_size=32, iterations=7, save_every=3, seed=0, device="cpu",
                  on_image=lambda scale, step, img: seen.append((scale, step, tuple(img.shape))))
    assert seen == [(0, 3, (3, 24, 32)), (0, 6, (3, 24, 32))]


def test_init_from_file(demo_inputs):
    """The run starts from the init picture: its first content loss is that picture's, not the content's 0."""
    kw = dict(extractor=_random_vgg(), image_size=32, iterations=1, seed=0, device="cpu", style_weight=0.0,
              tv_weight=0.0, precision="fp32")  # fp32: the content's own first loss is exactly 0
    from_file = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"],
                              init=str(demo_inputs["content_portrait"]), **kw)
    from_content = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], **kw)
    assert from_file.image.shape == (3, 24, 32)
    assert str(demo_inputs["content_portrait"]) in from_file.inputs
    assert from_content.trace["runs"][0]["trace"]["content"][0] == 0.0
    assert from_file.trace["runs"][0]["trace"]["content"][0] > 1e-5  # measured 2.9e-4 (random VGG-16 weights)


def test_memory_estimate_and_refusal(demo_inputs):
    small = estimate_memory_bytes(256, 256)
    big = estimate_memory_bytes(512, 512)
    assert 3.5 < (big - 80 * 2**20) / (small - 80 * 2**20) < 4.5  # scales with the pixel count
    with pytest.raises(ResourceError, match=r"would need about .*TiB.*image_size \d+ or less"):
        stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=_random_vgg(),
                      image_size=100000, iterations=1, device="cpu")


def test_auto_image_size_is_the_content_size_or_what_fits(demo_inputs, monkeypatch):
    import nst_image.stylize as S

    content = load_image(demo_inputs["content_landscape"])  # 640 x 480
    cpu = torch.device("cpu")
    cfg = S.ImageStyleConfig()
    monkeypatch.setattr(S, "available_memory_bytes", lambda device: 10**12)
    assert S.auto_image_size(content, cpu) == 640  # plenty of memory: the content's own size, no upscaling
    # Less than the untiled run needs: still the content's own size (tiles, a smaller history).
    untiled = estimate_memory_bytes(480, 640, content_layers=cfg.content_layers)
    monkeypatch.setattr(S, "available_memory_bytes", lambda device: untiled // 2)
    assert S.auto_image_size(content, cpu) == 640
    # So little that no tiling or history fits 640 px: the largest size that fits in some way.
    hw = (480, 640)
    fits = lambda n, have: S._memory_plan(hw, [], n, cfg, arch="vgg19", precision="fp32",  # noqa: E731
                                          have=int(0.9 * have), shrink_history=True) is not None
    have = estimate_memory_bytes(240, 320, history_size=10, history_precision="bf16") / 0.9
    assert not fits(640, have) and fits(256, have)
    monkeypatch.setattr(S, "available_memory_bytes", lambda device: have)
    size = S.auto_image_size(content, cpu)
    assert 256 <= size < 640 and size % 64 == 0
    assert fits(size, have) and not fits(size + 64, have)
    # bf16 activations take half the memory, so a larger picture fits.
    assert S.auto_image_size(content, cpu, precision="bf16") > size
    # stylize_image(image_size="auto") uses it, says so, and records the size it used.
    monkeypatch.setattr(S, "available_memory_bytes", lambda device: estimate_memory_bytes(72, 96) / 0.9 + 1)
    said = []
    r = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=_random_vgg(),
                      image_size="auto", iterations=1, device="cpu", log=said.append)
    chosen = r.trace["image_size"]
    assert 64 <= chosen < 640 and max(r.image.shape[1:]) == chosen
    assert any(f"image_size auto: {chosen} px" in m for m in said)
    with pytest.raises(InputError, match="whole number"):
        stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=_random_vgg(),
                      image_size="big", iterations=1)


def test_unknown_layer_is_an_input_error(demo_inputs):
    with pytest.raises(InputError, match="relu9_9"):
        stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=_random_vgg(),
                      image_size=32, iterations=1, style_layers=("relu9_9",))


def test_memory_limit_replaces_what_the_device_reports(demo_inputs):
    """The size probe's seam: a limit below the estimate refuses (exit code 5), a huge one lets the run through."""
    need = estimate_memory_bytes(48, 64, arch="vgg16")
    with pytest.raises(ResourceError, match="image_size 64"):
        stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=_random_vgg(),
                      image_size=64, iterations=1, device="cpu", precision="fp32", memory_limit=need - 1)
    r = stylize_image(demo_inputs["content_landscape"], demo_inputs["style_mosaic"], extractor=_random_vgg(),
                      image_size=64, iterations=1, device="cpu", memory_limit=1 << 62)
    assert r.image.shape == (3, 48, 64)
    assert ResourceError.exit_code == 5
