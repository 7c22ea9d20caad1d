"""The ``nst`` command line that reproduces a run, rebuilt from the run's trace.

The flags come from the same declarations as the CLI's options (:mod:`nst_core.config`): the command
carries the input paths, ``-o`` and one flag per setting that differs from the config's default
(``--seed`` whenever a seed is set), so it stays short and reads as "what was changed". Paths are written
as the trace has them: relative ones are relative to the folder the run was started from.

For example, ``format_command(command_for_trace(json.loads(Path("out.trace.json").read_text())))`` gives
``nst image content.png style.png -o out.png --style-weight 5.0 --seed 0``.
"""

from __future__ import annotations

import os
import shlex
from typing import Any, Mapping, Sequence

from nst_audio.stylize import AudioStyleConfig
from nst_core import InputError
from nst_core.config import OptionSpec, config_from_settings, flags_of, options_of
from nst_core.trace import READABLE_TRACE_FORMATS
from nst_image.stylize import ImageStyleConfig

__all__ = ["command_for_trace", "format_command", "config_for_trace", "option_flags", "MODALITY_CONFIGS"]

#: Stand-ins the traces write for inputs given in memory rather than as files.
IN_MEMORY = ("<tensor>", "<clip>")

MODALITY_CONFIGS: dict[str, type] = {"image": ImageStyleConfig, "audio": AudioStyleConfig}


def option_flags(spec: OptionSpec, flag: str, value: Any, default: Any, name: str) -> list[str]:
    """The flags that set one option to ``value`` (empty for the default of a switch option)."""
    if spec.switches is not None:
        if value == default:
            return []
        if value not in spec.switches:
            raise InputError(f"setting {name}={value!r} has no command-line flag; known: "
                             f"{', '.join(map(str, [default, *spec.switches]))}")
        return [spec.switches[value]]
    if value is None:
        if spec.zero_is_none:
            return [flag, "0"]
        raise InputError(f"setting {name}=None has no command-line flag (the default is {default!r})")
    if spec.kind in ("names", "floats", "ints"):
        # An empty tuple becomes '' (read back as ()), which differs from None (the option left out).
        return [flag, ",".join(str(v) for v in value)]
    # str() of a float is its shortest round-tripping form (0.1, 1e-05), which the CLI parses back exactly.
    return [flag, str(value)]


def config_for_trace(trace: Mapping[str, Any]):
    """The config a trace's settings describe (both trace formats this version reads)."""
    modality = trace.get("modality")
    if modality not in MODALITY_CONFIGS:
        raise InputError(f"trace modality {modality!r} is not one nst can run; expected image or audio")
    settings = trace.get("settings")
    if not isinstance(settings, Mapping):
        raise InputError("the trace has no settings record")
    settings = dict(settings)
    if trace.get("format", READABLE_TRACE_FORMATS[-1]) == "nst-trace/1" and "extractor_weights" in trace:
        settings.setdefault("weights", trace["extractor_weights"])  # /1 kept the vgg weights beside the settings
    try:
        return config_from_settings(MODALITY_CONFIGS[modality], settings, what="trace settings")
    except InputError as err:
        raise InputError(f"{err} (a trace from another version?)") from None


def command_for_trace(trace: Mapping[str, Any], *, output: str | os.PathLike | None = None) -> list[str]:
    """The ``nst`` argv that reproduces the run a trace describes.

    Parameters
    ----------
    trace : a trace document as ``stylize_image`` / ``stylize_audio`` make it (or read back from its JSON).
    output : result path for ``-o``; default: the trace's ``output``.

    Returns
    -------
    list of str, starting ``["nst", "image", ...]`` or ``["nst", "audio", ...]``: the inputs, ``-o``, a flag
    per setting that differs from the config's default, and ``--seed`` when a seed is set. Progress display
    and audio-only output options (``--subtype``, ``--spectrogram``) are not settings and are left out.

    Raises
    ------
    InputError
        When the command line cannot reproduce the run: inputs given in memory (``<tensor>``, ``<clip>``),
        no output path, a setting with a value no flag expresses, or a texture from a content clip.
    """
    cfg = config_for_trace(trace)
    modality = trace["modality"]
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

    default = type(cfg)()
    flags: list[str] = []
    for path, f, spec in options_of(type(cfg)):
        value, base = _get(cfg, path), _get(default, path)
        if value == base and not (path[-1] == "seed" and value is not None):
            continue
        flags += option_flags(spec, flags_of(f)[0], value, base, ".".join(path))
    options = ["-o", os.fspath(out), *flags]
    if any(p.startswith("-") for p in positional):  # a file named like an option: after "--", it is a file
        return ["nst", modality, *options, "--", *positional]
    return ["nst", modality, *positional, *options]


def _get(cfg: Any, path: Sequence[str]) -> Any:
    for name in path:
        cfg = getattr(cfg, name)
    return cfg


def format_command(argv: Sequence[str]) -> str:
    """``argv`` as one POSIX shell line, quoted where needed (``shlex.split`` gives ``argv`` back)."""
    return shlex.join(os.fspath(a) for a in argv)
