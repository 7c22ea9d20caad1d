"""Modality-agnostic core of neural style transfer: losses, objective, optimization loop, run plans,
device choice, settings, extractor registry and traces.

Imports torch and numpy only; it knows nothing of images or audio.
"""

from .config import ConfigError, option, replace_options, resolve_config, validate
from .device import (DEVICES, PRECISIONS, available_memory_bytes, device_description, human_bytes,
                     peak_memory_bytes, precision_context, require_memory, reset_peak_memory, resolve_device,
                     resolve_precision, seed_everything, set_threads, synchronize, usable_cores)
from .errors import InputError, InterruptedRun, JobsFailed, NSTError, OutputError, ResourceError, WeightsError
from .fileio import atomic_path, check_output_path, write_text_atomic
from .losses import blend_grams, content_loss, gram_loss, gram_matrix, style_loss, total_variation
from .objective import FeatureExtractor, Objective, TargetCache, make_loss_fn, style_targets
from .optimize import LBFGS, OptimizeConfig, Result, Step, optimize
from .plan import Checkpoint, Plan, PlanResult, RunStart, Segment, run_plan, start_run, time_loss_fn
from .registry import extractor_names, get_extractor_builder, register_extractor
from .result import StyleResult, checkpoint_path, trace_path
from .tiling import (LayerGeometry, Tiling, layer_geometry, make_tiled_loss_fn, min_tile, tile_geometry,
                     tiled_features, tiled_grams)
from .trace import TRACE_FORMAT, run_trace, write_trace

__all__ = [
    "ConfigError", "option", "replace_options", "resolve_config", "validate",
    "DEVICES", "PRECISIONS", "available_memory_bytes", "device_description", "human_bytes", "peak_memory_bytes",
    "precision_context", "require_memory", "reset_peak_memory", "resolve_device", "resolve_precision",
    "seed_everything", "set_threads", "synchronize", "usable_cores",
    "InputError", "InterruptedRun", "JobsFailed", "NSTError", "OutputError", "ResourceError", "WeightsError",
    "atomic_path", "check_output_path", "write_text_atomic",
    "blend_grams", "content_loss", "gram_loss", "gram_matrix", "style_loss", "total_variation",
    "FeatureExtractor", "Objective", "TargetCache", "make_loss_fn", "style_targets",
    "LBFGS", "OptimizeConfig", "Result", "Step", "optimize",
    "Checkpoint", "Plan", "PlanResult", "RunStart", "Segment", "run_plan", "start_run", "time_loss_fn",
    "extractor_names", "get_extractor_builder", "register_extractor",
    "StyleResult", "checkpoint_path", "trace_path",
    "LayerGeometry", "Tiling", "layer_geometry", "make_tiled_loss_fn", "min_tile", "tile_geometry",
    "tiled_features", "tiled_grams",
    "TRACE_FORMAT", "run_trace", "write_trace",
]
