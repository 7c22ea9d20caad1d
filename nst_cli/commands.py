"""The ``nst`` command line that reproduces a run, rebuilt from the run's trace.

A trace (:func:`nst_core.run_trace`) records every setting of its config dataclass; the command carries the
input paths, ``-o`` and one flag per setting that differs from the config's default (``--seed`` whenever a
seed is set), so it stays short and reads as "what was changed". Paths are written as the trace has them:
relative ones are relative to the folder the run was started from.

For example, ``format_command(command_for_trace(json.loads(Path("out.trace.json").read_text())))`` gives
``nst image content.png style.png -o out.png --style-weight 5.0 --seed 0``.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Any, Callable, Mapping, Sequence

from nst_audio.stylize import AudioStyleConfig
from nst_core import InputError
from nst_image.stylize import ImageStyleConfig

__all__ = ["command_for_trace", "format_command"]

#: Stand-ins the traces write for inputs given in memory rather than as files.
IN_MEMORY = ("<tensor>", "<clip>")

_Flags = Callable[[Any], list[str]]


def _text(value: Any) -> str:
    # str() of a float is its shortest round-tripping form (0.1, 1e-05), which the CLI parses back exactly.
    return str(value)


def _option(flag: str) -> _Flags:
    return lambda value: [flag, _text(value)]


def _comma_list(flag: str) -> _Flags:
    # An empty tuple becomes '' (the CLI reads it back as ()), which differs from None (option left out).
    return lambda value: [flag, ",".join(_text(v) for v in value)]


def _switch(choices: Mapping[str, list[str]], what: str) -> _Flags:
    def flags(value: Any) -> list[str]:
        if value not in choices:
            raise InputError(f"{what} {value!r} has no command-line flag; known: {', '.join(choices)}")
        return list(choices[value])
    return flags


def _max_step(value: float | None) -> list[str]:
    return ["--max-step", "0" if value is None else _text(value)]  # the CLI reads 0 as "no limit" (None)


# One entry per config field, in the config's order; a field missing here cannot be reproduced (and
# tests/cli/test_commands.py fails until it has a flag and an entry).
_IMAGE_FLAGS: dict[str, _Flags] = {
    "image_size": _option("--image-size"),
    "style_scale": _option("--style-scale"),
    "content_weight": _option("--content-weight"),
    "style_weight": _option("--style-weight"),
    "tv_weight": _option("--tv-weight"),
    "content_layers": _comma_list("--content-layers"),
    "style_layers": _comma_list("--style-layers"),
    "style_blend_weights": _comma_list("--style-blend-weights"),
    "init": _option("--init"),
    "original_colors": _switch({"off": [], "chroma": ["--original-colors"], "luminance": ["--luminance-only"]},
                               "original colours"),
    "scales": _comma_list("--scales"),
    "backbone": _option("--backbone"),
    "weights": _option("--weights"),
    "weights_layout": _option("--weights-layout"),
    "pooling": _option("--pooling"),
    "iterations": _option("--iterations"),
    "optimizer": _option("--optimizer"),
    "learning_rate": _option("--learning-rate"),
    "history_size": _option("--history-size"),
    "log_every": _option("--log-every"),
    "save_every": _option("--save-every"),
    "device": _option("--device"),
    "precision": _option("--precision"),
    "seed": _option("--seed"),
}

_AUDIO_FLAGS: dict[str, _Flags] = {
    "mode": _switch({"transfer": [], "texture": ["--texture"], "style-from-content": ["--style-only"]}, "mode"),
    "sample_rate": _option("--sample-rate"),
    "n_fft": _option("--n-fft"),
    "hop_length": _option("--hop"),
    "window": _option("--window"),
    "n_mels": _option("--n-mels"),
    "extractor": _option("--extractor"),
    "filters": _option("--filters"),
    "kernel_size": _option("--kernel-size"),
    "extractor_seed": _option("--extractor-seed"),
    "content_weight": _option("--content-weight"),
    "style_weight": _option("--style-weight"),
    "content_layers": _comma_list("--content-layers"),
    "style_layers": _comma_list("--style-layers"),
    "style_blend_weights": _comma_list("--style-blend-weights"),
    "init": _option("--init"),
    "duration": _option("--duration"),
    "channels": _switch({"mono": [], "stereo": ["--stereo"], "mid-side": ["--mid-side"]}, "channel mode"),
    "griffin_lim_iters": _option("--griffin-lim-iters"),
    "griffin_lim_momentum": _option("--griffin-lim-momentum"),
    "chunk_seconds": _option("--chunk-seconds"),
    "chunk_overlap_seconds": _option("--chunk-overlap"),
    "iterations": _option("--iterations"),
    "optimizer": _option("--optimizer"),
    "learning_rate": _option("--learning-rate"),
    "history_size": _option("--history-size"),
    "max_step": _max_step,
    "log_every": _option("--log-every"),
    "device": _option("--device"),
    "precision": _option("--precision"),
    "seed": _option("--seed"),
}

_MODALITIES: dict[str, tuple[type, dict[str, _Flags]]] = {
    "image": (ImageStyleConfig, _IMAGE_FLAGS),
    "audio": (AudioStyleConfig, _AUDIO_FLAGS),
}


def command_for_trace(trace: Mapping[str, Any], *, output: str | os.PathLike | None = None) -> list[str]:
    """The ``nst`` argv that reproduces the run a trace describes.

    Parameters
    ----------
    trace : a trace document as ``stylize_image`` / ``stylize_audio`` make it (or read back from its JSON):
        ``modality``, ``inputs``, ``output``, ``settings`` (the config as a dict; lists stand for tuples,
        missing fields for their defaults) and, for audio runs with the ``vgg`` extractor,
        ``extractor_weights`` (which ``nst audio`` records).
    output : result path for ``-o``; default: the trace's ``output``.

    Returns
    -------
    list of str, starting ``["nst", "image", ...]`` or ``["nst", "audio", ...]``: the inputs, ``-o``, a flag
    per setting that differs from the config's default, and ``--seed`` when a seed is set. Progress display
    (``--no-progress``) and audio-only output options (``--subtype``, ``--spectrogram``) are not settings and
    are left out.

    Raises
    ------
    InputError
        When the command line cannot reproduce the run: inputs given in memory (``<tensor>``, ``<clip>``),
        no output path, a setting without a flag (or with a value no flag expresses), a texture from a
        content clip, or a ``vgg`` audio run that does not record its backbone weights.
    """
    modality = trace.get("modality")
    if modality not in _MODALITIES:
        raise InputError(f"trace modality {modality!r} is not one nst can run; expected image or audio")
    cls, table = _MODALITIES[modality]
    cfg = _config(cls, trace.get("settings"), modality)
    inputs = trace.get("inputs")
    if not isinstance(inputs, Mapping):
        raise InputError("the trace has no inputs record")

    content, styles = inputs.get("content"), inputs.get("styles")
    if not isinstance(styles, (list, tuple)) or not styles:
        raise InputError("the trace records no style inputs")
    if modality == "audio" and cfg.mode == "texture":
        if content is not None:
            raise InputError("a texture synthesized alongside a content clip cannot be run from the command line "
                             "(nst audio --texture takes style clips only)")
        positional = list(styles)
    else:
        if content is None:
            raise InputError(f"the trace records no content input for a {modality} run")
        positional = [content, *styles]
    for item in positional:
        if not isinstance(item, (str, os.PathLike)) or os.fspath(item) in IN_MEMORY:
            raise InputError(f"input {item!r} was given in memory, not as a file; save it and run on the file")
    positional = [os.fspath(p) for p in positional]

    out = output if output is not None else trace.get("output")
    if out is None:
        raise InputError("the trace records no output path (the result was not saved); pass output=")

    default = cls()
    flags: list[str] = []
    for field in dataclasses.fields(cls):
        value = getattr(cfg, field.name)
        if value == getattr(default, field.name) and not (field.name == "seed" and value is not None):
            continue
        if field.name not in table:
            raise InputError(f"setting {field.name}={value!r} has no nst {modality} flag")
        flags += table[field.name](value)
    if modality == "audio" and cfg.extractor == "vgg":
        flags += _vgg_weights(trace)

    options = ["-o", os.fspath(out), *flags]
    if any(p.startswith("-") for p in positional):  # a file named like an option: after "--", it is a file
        return ["nst", modality, *options, "--", *positional]
    return ["nst", modality, *positional, *options]


def format_command(argv: Sequence[str]) -> str:
    """``argv`` as one POSIX shell line, quoted where needed (``shlex.split`` gives ``argv`` back)."""
    return shlex.join(os.fspath(a) for a in argv)


def _config(cls: type, settings: Any, modality: str):
    """The config a trace's settings describe; lists (JSON has no tuples) back to tuples."""
    if not isinstance(settings, Mapping):
        raise InputError("the trace has no settings record")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise InputError(f"setting {unknown[0]} has no nst {modality} flag (a trace from another version?)")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})


def _vgg_weights(trace: Mapping[str, Any]) -> list[str]:
    weights = trace.get("extractor_weights")
    if weights is None:
        # stylize_audio is handed the backbone, so only the CLI knows its weights and writes them down.
        raise InputError("the audio run used the vgg extractor but its trace does not record the backbone "
                         "weights (runs made with nst audio do)")
    return [] if weights == "auto" else ["--weights", _text(weights)]
