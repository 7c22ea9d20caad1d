"""Image metrics: luminance SSIM and the Gram distance to the style."""

from __future__ import annotations

import pytest
import torch

from nst_image import VGGFeatures, load_image, resize_long_side
from nst_image.metrics import image_metrics, luminance_ssim, style_gram_distance


@pytest.fixture(scope="module")
def landscape(demo_inputs):
    return resize_long_side(load_image(demo_inputs["content_landscape"]), 96)


def test_ssim_is_one_for_identical_images_and_falls_with_noise(landscape):
    assert luminance_ssim(landscape, landscape) == pytest.approx(1.0, abs=1e-5)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(landscape.shape, generator=gen)
    scores = [luminance_ssim((landscape + s * noise).clamp(0, 1), landscape) for s in (0.02, 0.1, 0.3)]
    assert scores[0] > scores[1] > scores[2]
    assert scores[0] > 0.8 and scores[2] < 0.5


def test_ssim_ignores_colour_but_not_structure(landscape):
    # Swapping colour channels keeps most of the luminance structure; shuffling pixels destroys it.
    swapped = landscape[[2, 0, 1]]
    shuffled = landscape.flatten(1)[:, torch.randperm(landscape[0].numel(), generator=torch.Generator().manual_seed(1))]
    assert luminance_ssim(swapped, landscape) > 0.5
    assert luminance_ssim(shuffled.view_as(landscape), landscape) < 0.2


def test_ssim_resizes_the_reference_and_handles_tiny_images(landscape):
    half = resize_long_side(landscape, 48)
    assert luminance_ssim(landscape, half) > 0.6
    tiny = torch.rand(3, 5, 4, generator=torch.Generator().manual_seed(0))
    # Smaller than the 11-px window: still 1 for itself, symmetric, and below 1 for a different picture.
    assert luminance_ssim(tiny, tiny) == pytest.approx(1.0, abs=1e-6)
    flipped = luminance_ssim(tiny, tiny.flip(-1))
    assert flipped == pytest.approx(luminance_ssim(tiny.flip(-1), tiny), abs=1e-6) and flipped < 0.9
    with pytest.raises(ValueError, match="RGB image"):
        luminance_ssim(torch.rand(1, 8, 8), torch.rand(1, 8, 8))


def test_gram_distance_is_zero_to_itself_and_larger_for_other_images(landscape, demo_inputs):
    torch.manual_seed(0)
    ext = VGGFeatures("vgg16")
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    style = resize_long_side(load_image(demo_inputs["style_swirls"]), 96)
    assert style_gram_distance(ext, style, style, layers) == pytest.approx(0.0, abs=1e-6)
    d_content = style_gram_distance(ext, landscape, style, layers)
    d_blend = style_gram_distance(ext, 0.5 * landscape + 0.5 * torch.nn.functional.interpolate(
        style[None], size=landscape.shape[-2:], mode="bilinear")[0], style, layers)
    assert d_content > 0.05
    assert d_blend < d_content
    m = image_metrics(ext, landscape, landscape, style, layers)
    assert m["content"]["ssim_luminance_result"] == pytest.approx(1.0, abs=1e-5)
    assert m["style"]["gram_distance_result"] == pytest.approx(m["style"]["gram_distance_content"])
