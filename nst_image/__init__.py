"""Image style transfer: image I/O, VGG backbones and their weights, colour preservation, ``stylize_image``."""

from .backbones import VGGFeatures, layer_names
from .io import load_image, resize_long_side, save_image, to_pil
from .stylize import ImageResult, ImageStyleConfig, estimate_memory_bytes, scale_schedule, stylize_image
from .weights import build_extractor, fetch_vgg16_hed, resolve_weights

__all__ = ["VGGFeatures", "layer_names", "load_image", "resize_long_side", "save_image", "to_pil",
           "ImageResult", "ImageStyleConfig", "estimate_memory_bytes", "scale_schedule", "stylize_image",
           "build_extractor", "fetch_vgg16_hed", "resolve_weights"]
