"""Modality-agnostic core of neural style transfer: losses, objective, optimization loop, device choice.

Imports torch and numpy only; it knows nothing of images or audio.
"""

from .device import (DEVICES, PRECISIONS, available_memory_bytes, device_description, peak_memory_bytes,
                     precision_context, resolve_device, resolve_precision, seed_everything, synchronize)
from .errors import InputError, NSTError, OutputError, ResourceError, WeightsError
from .fileio import atomic_path, check_output_path, write_text_atomic
from .losses import blend_grams, content_loss, gram_loss, gram_matrix, style_loss, total_variation
from .objective import FeatureExtractor, Objective, make_loss_fn, style_targets
from .optimize import LBFGS, OptimizeConfig, Result, Step, optimize
from .trace import TRACE_FORMAT, run_trace, write_trace

__all__ = [
    "DEVICES", "PRECISIONS", "available_memory_bytes", "device_description", "peak_memory_bytes",
    "precision_context", "resolve_device", "resolve_precision", "seed_everything", "synchronize",
    "InputError", "NSTError", "OutputError", "ResourceError", "WeightsError",
    "atomic_path", "check_output_path", "write_text_atomic",
    "blend_grams", "content_loss", "gram_loss", "gram_matrix", "style_loss", "total_variation",
    "FeatureExtractor", "Objective", "make_loss_fn", "style_targets",
    "LBFGS", "OptimizeConfig", "Result", "Step", "optimize",
    "TRACE_FORMAT", "run_trace", "write_trace",
]
