"""Settings defined once: each config field carries its flag, help text, kind and limits.

A front end's config is a frozen dataclass whose fields are declared with :func:`option`. From that one
declaration come the validation (in the config itself, with messages that name the field), the command-line
options (``nst_cli`` derives them), the command that reproduces a run from its trace, and the routing of
keyword overrides (``stylize_image(..., iterations=100)`` reaches the nested :class:`OptimizeConfig`).

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo:
...     weight: float = option(1.0, help="A loss weight.", kind="float", min=0.0)
...     def __post_init__(self):
...         validate(self)
>>> Demo(weight=2).weight
2.0
>>> Demo(weight=float("nan"))
Traceback (most recent call last):
...
nst_core.errors.ConfigError: weight must be a finite number >= 0, not nan
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from .device import DEVICES, PRECISIONS
from .errors import ConfigError, InputError

__all__ = ["Options", "resolve_config", "as_list", "device_option", "precision_option", "seed_option", "threads_option",
           "blend_weights_option", "ConfigError", "OptionSpec", "option", "validate", "options_of", "replace_options",
           "config_from_settings", "config_settings", "KINDS"]

#: Kinds of value an option holds; each has one parser from text (the CLI) and one check.
KINDS = ("int", "float", "str", "names", "floats", "ints", "size", "nested")


@dataclass(frozen=True)
class OptionSpec:
    """What a field declares about itself (``field.metadata["nst"]``).

    help : one line for ``--help``. flags : command-line spellings, the first the canonical one (default
    ``--field-name``). kind : one of :data:`KINDS`. choices : allowed values. min, max : inclusive bounds
    (``min_open``: the lower bound excluded). optional : ``None`` is allowed (means "the default
    behaviour"). switches : for a choice field that the CLI sets with on/off flags instead of a value,
    ``{value: flag}`` (the default value has none). zero_is_none : the CLI writes ``None`` as 0.
    check : an extra rule ``check(value) -> message or None``. cli : False keeps a field off the CLI.
    """

    help: str
    flags: tuple[str, ...] = ()
    kind: str = "str"
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    optional: bool = False
    switches: Mapping[Any, str] | None = None
    zero_is_none: bool = False
    check: Callable[[Any], str | None] | None = None
    cli: bool = True
    aliases: tuple[str, ...] = ()


def option(default: Any = dataclasses.MISSING, *, help: str, kind: str = "str", default_factory: Any = dataclasses.MISSING,
           **spec: Any) -> Any:
    """A dataclass field with its :class:`OptionSpec`. Keywords are the spec's fields."""
    if kind not in KINDS:
        raise ValueError(f"unknown option kind {kind!r}")
    meta = {"nst": OptionSpec(help=help, kind=kind, **spec)}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def spec_of(f: dataclasses.Field) -> OptionSpec | None:
    return f.metadata.get("nst")


def flags_of(f: dataclasses.Field) -> tuple[str, ...]:
    spec = spec_of(f)
    return (spec.flags if spec and spec.flags else ("--" + f.name.replace("_", "-"),))


def options_of(cls_or_cfg: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dataclasses.Field, OptionSpec]]:
    """Every option of a config, nested ones flattened: ``(path, field, spec)`` with ``path`` the field names
    from the top (``("optimize", "steps")``)."""
    for f in dataclasses.fields(cls_or_cfg):
        spec = spec_of(f)
        if spec is None:
            continue
        if spec.kind == "nested":
            nested_type = _nested_type(cls_or_cfg, f)
            yield from options_of(nested_type, prefix + (f.name,))
        else:
            yield prefix + (f.name,), f, spec


def _nested_type(cls_or_cfg: Any, f: dataclasses.Field) -> type:
    if not isinstance(cls_or_cfg, type):
        return type(getattr(cls_or_cfg, f.name))
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return type(f.default_factory())  # type: ignore[misc]
    return type(f.default)


def _describe_bounds(spec: OptionSpec) -> str:
    parts = []
    if spec.min is not None:
        parts.append(f"{'>' if spec.min_open else '>='} {spec.min:g}")
    if spec.max is not None:
        parts.append(f"<= {spec.max:g}")
    return " and ".join(parts)


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_number(name: str, v: Any, spec: OptionSpec, integral: bool) -> Any:
    what = "a whole number" if integral else "a finite number"
    bounds = _describe_bounds(spec)
    full = f"{name} must be {what}" + (f" {bounds}" if bounds else "")
    if integral:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not _is_int(v):
            raise ConfigError(f"{full}, not {v!r}", name)
        v = int(v)
    else:
        if not _is_real(v) or not math.isfinite(float(v)):
            raise ConfigError(f"{full}, not {v!r}" if not _is_real(v) else f"{full}, not {float(v):g}", name)
        v = float(v)
    if spec.min is not None and (v < spec.min or (spec.min_open and v == spec.min)):
        raise ConfigError(f"{full}, not {v:g}", name)
    if spec.max is not None and v > spec.max:
        raise ConfigError(f"{full}, not {v:g}", name)
    return v


def check_value(name: str, value: Any, spec: OptionSpec) -> Any:
    """Check one value against its spec; return it normalised (lists to tuples, ints to floats where a
    float is meant). Raises :class:`ConfigError` naming ``name``."""
    if value is None:
        if spec.optional:
            return None
        raise ConfigError(f"{name} must be given (it has no 'none' setting)", name)
    kind = spec.kind
    if kind == "int":
        value = _check_number(name, value, spec, integral=True)
    elif kind == "float":
        value = _check_number(name, value, spec, integral=False)
    elif kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, not {type(value).__name__}", name)
    elif kind == "size" and value != "auto":
        if isinstance(value, str):
            raise ConfigError(f"{name} must be a whole number of px or 'auto', not {value!r}", name)
        value = _check_number(name, value, spec, integral=True)
    elif kind in ("names", "floats", "ints"):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ConfigError(f"{name} must be a list or tuple, not {type(value).__name__}", name)
        items = tuple(value)
        if kind == "names":
            if not all(isinstance(x, str) and x.strip() for x in items):
                raise ConfigError(f"{name} must hold non-empty names, not {list(items)!r}", name)
        else:
            item_spec = dataclasses.replace(spec, kind=kind[:-1], optional=False)
            items = tuple(_check_number(name, x, item_spec, integral=kind == "ints") for x in items)
        value = items
    if spec.choices is not None and value not in spec.choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, spec.choices))}, not {value!r}", name)
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise ConfigError(f"{name} {problem}", name)
    return value


def validate(cfg: Any) -> None:
    """Check every option of a frozen config dataclass in place (call from ``__post_init__``)."""
    for f in dataclasses.fields(cfg):
        spec = spec_of(f)
        if spec is None:
            continue
        value = getattr(cfg, f.name)
        if spec.kind == "nested":
            if not dataclasses.is_dataclass(value):
                want = _nested_type(type(cfg), f).__name__
                raise ConfigError(f"{f.name} must be a {want}, not {type(value).__name__}", f.name)
            continue
        object.__setattr__(cfg, f.name, check_value(f.name, value, spec))


def _route(cls: type, key: str) -> tuple[str, ...] | None:
    for path, f, spec in options_of(cls):
        if path[-1] == key or key in spec.aliases:
            return path
    return None


def replace_options(cfg: Any, options: Mapping[str, Any], *, owner: str = "options") -> Any:
    """``cfg`` with ``options`` applied, keys being field names of the config or of a nested config
    (``iterations`` reaches ``optimize.steps`` by its alias). Unknown keys raise :class:`InputError`."""
    top = {f.name for f in dataclasses.fields(cfg)}
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in options.items():
        if key in top:
            direct[key] = value
            continue
        path = _route(type(cfg), key)
        if path is None:
            known = sorted({p[-1] for p, _f, _s in options_of(type(cfg))})
            raise InputError(f"{owner}: unknown option {key!r}; known options are {', '.join(known)}")
        nested.setdefault(path[0], {})[path[-1]] = value
    for name, kw in nested.items():
        base = direct.get(name, getattr(cfg, name))
        direct[name] = dataclasses.replace(base, **kw)
    return dataclasses.replace(cfg, **direct) if direct else cfg


def config_settings(cfg: Any) -> dict:
    """The settings of a config as a plain dict (nested configs as nested dicts), for traces."""
    return dataclasses.asdict(cfg)


def config_from_settings(cls: type, settings: Mapping[str, Any], *, what: str = "settings") -> Any:
    """Rebuild a config from :func:`config_settings` output (JSON lists back to tuples). Flat keys of a
    nested config (traces written before it was nested) are routed to it. Unknown keys raise InputError."""
    if not isinstance(settings, Mapping):
        raise InputError(f"{what} must be a mapping of option names to values")
    default = cls()
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        f = next((f for f in dataclasses.fields(cls) if f.name == key), None)
        spec = spec_of(f) if f is not None else None
        if spec is not None and spec.kind == "nested":
            if not isinstance(value, Mapping):
                raise InputError(f"{what}: {key} must be a mapping")
            for k, v in value.items():
                flat[k] = tuple(v) if isinstance(v, list) else v
            continue
        flat[key] = tuple(value) if isinstance(value, list) else value
    return replace_options(default, flat, owner=what)


class Options:
    """Mixin of the front ends' configs: ``Config.of(iterations=100, image_size=256)`` and
    ``cfg.replace(...)`` take any option by name, nested ones included (which a dataclass constructor
    would not: ``iterations`` lives in ``optimize``)."""

    @classmethod
    def of(cls, **options: Any):
        return replace_options(cls(), options, owner=cls.__name__)

    def replace(self, **options: Any):
        return replace_options(self, options, owner=type(self).__name__)


def resolve_config(cls: type, config: Any, options: Mapping[str, Any], *, owner: str) -> Any:
    """The config a front-end call asks for: ``config`` (an instance of ``cls``, a mapping of its options,
    or None for the defaults) with keyword ``options`` applied on top. Anything else is an InputError
    that says what is accepted."""
    if config is None:
        config = cls()
    elif isinstance(config, Mapping):
        config = replace_options(cls(), config, owner=owner)
    elif not isinstance(config, cls):
        raise InputError(f"{owner}: config must be a {cls.__name__}, a dict of its options, or None; "
                         f"got {type(config).__name__}")
    return replace_options(config, options, owner=owner)


# ------------------------------------------------------------------------------------------------------------------
# Options every front end has, declared once


def _not_all_zero(weights: tuple[float, ...]) -> str | None:
    return None if max(weights, default=0) > 0 else "must not all be zero"


def _known_device(name: str) -> str | None:
    return None if name.split(":")[0] in DEVICES else f"must be one of {', '.join(DEVICES)} (cuda:N for one GPU)"


def device_option() -> Any:
    return option("auto", check=_known_device, help=", ".join(DEVICES) + ".")


def precision_option() -> Any:
    return option("auto", choices=PRECISIONS,
                  help="auto (tf32 on CUDA, bf16 on a CPU with bf16 instructions, else fp32), fp32, tf32, bf16.")


def threads_option() -> Any:
    return option(None, kind="int", min=1, optional=True,
                  help="CPU threads (default: one per core this process may use, or a batch worker's share).")


def seed_option() -> Any:
    return option(None, kind="int", optional=True, help="Seed for reproducible results.")


def blend_weights_option(noun: str) -> Any:
    return option(None, kind="floats", min=0.0, optional=True, check=_not_all_zero,
                  help=f"Comma-separated weight per style {noun}, e.g. 0.7,0.3 (default: equal).")


def as_list(items: Any, single: tuple[type, ...], *, what: str, noun: str) -> list:
    """``items`` as a non-empty list: one item of a ``single`` type, or an iterable of them; InputError otherwise."""
    if isinstance(items, single):
        return [items]
    if items is None or isinstance(items, (bytes, str)) or not hasattr(items, "__iter__"):
        raise InputError(f"{what} must be a {noun} or a list of them, not {type(items).__name__}")
    items = list(items)
    if not items:
        raise InputError(f"give at least one of {what}")
    return items
