"""Feature extractors by name, per modality.

A front end registers the extractors it owns (``nst_audio`` its random CNNs); a package that composes
two front ends registers the cross-overs (``nst_jobs`` an image backbone reading spectrograms) through
the ``nst.extractors`` entry-point group, so that ``stylize_audio(..., extractor="vgg")`` finds it while
``nst_audio`` never imports ``nst_image``. An entry point named ``audio:vgg`` points at a builder; it is
loaded the first time that name is asked for.

A builder is ``builder(config, *, n_freq, log) -> extractor``: ``config`` is the front end's config
dataclass, ``n_freq`` the channels of the signal it will read (frequency bins or mel bands). The
extractor follows :class:`nst_core.FeatureExtractor` and also states ``spec`` (a JSON-ready dict of
everything that defines it, for the trace), ``description``, ``layer_names``, its default content and
style layers, and ``activation_bytes(n_freq, frames, value_bytes)``: the activations one step keeps.

>>> register_extractor("demo", "identity", lambda config, *, n_freq, log: None)
>>> "identity" in extractor_names("demo")
True
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Callable

from .errors import InputError

__all__ = ["ENTRY_POINT_GROUP", "register_extractor", "extractor_names", "get_extractor_builder"]

ENTRY_POINT_GROUP = "nst.extractors"
Builder = Callable[..., Any]
_BUILDERS: dict[tuple[str, str], Builder] = {}
_entry_points_loaded = False


def register_extractor(modality: str, name: str, builder: Builder) -> None:
    """Make ``name`` an extractor of ``modality`` (re-registering a name replaces it)."""
    _BUILDERS[(modality, name)] = builder


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        modality, _, name = ep.name.partition(":")
        if (modality, name) in _BUILDERS:
            continue
        try:
            builder = ep.load()
        except Exception:  # a broken plug-in must not break the others; asking for it by name says why
            continue
        _BUILDERS.setdefault((modality, name), builder)


def extractor_names(modality: str) -> tuple[str, ...]:
    """Names registered for ``modality``, entry points included, in registration order."""
    _load_entry_points()
    return tuple(name for (m, name) in _BUILDERS if m == modality)


def get_extractor_builder(modality: str, name: str) -> Builder:
    """The builder registered as ``name``; InputError naming the known ones when there is none."""
    if (modality, name) not in _BUILDERS:
        _load_entry_points()
    try:
        return _BUILDERS[(modality, name)]
    except KeyError:
        known = ", ".join(extractor_names(modality)) or "none"
        raise InputError(f"unknown {modality} extractor {name!r}; known: {known} (an extractor from another "
                         "package is registered when that package is installed)") from None
