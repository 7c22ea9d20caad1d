"""Command-line options derived from the config dataclasses: one flag per field, named, explained and
limited by the field's own declaration (:mod:`nst_core.config`), parsed back into the config here.

Values arrive as text and are parsed by the field's kind, so every check, and every message, is the
config's own; :func:`flag_message` turns the field names in a library message into the flags a user typed.
"""

from __future__ import annotations

import inspect
import re
from typing import Annotated, Any, Callable, Mapping, Optional, Sequence

import typer

from nst_core.config import ConfigError, OptionSpec, flags_of, options_of, resolve_config

__all__ = ["config_parameters", "config_from_cli", "flag_for", "flag_message", "make_command", "parse_assignments"]


def _param_name(path: tuple[str, ...]) -> str:
    return "__".join(path)


def _switch_name(path: tuple[str, ...], value: str) -> str:
    return _param_name(path) + "__" + re.sub(r"\W", "_", str(value))


def _default_of(cls: type, path: tuple[str, ...]) -> Any:
    value: Any = cls()
    for name in path:
        value = getattr(value, name)
    return value


def _shown(spec: OptionSpec, default: Any) -> str:
    if default is None:
        return "0" if spec.zero_is_none else "none"
    if spec.kind in ("names", "floats", "ints"):
        return ",".join(map(str, default))
    return str(default)


_METAVARS = {"int": "N", "float": "X", "size": "PX|auto", "names": "A,B,...", "floats": "X,Y,...",
             "ints": "N,M,..."}


def config_parameters(cls: type, *, exclude: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One typer option per option of ``cls`` (nested ones flattened): text values, None when not given,
    so that only what the user typed overrides the config's defaults; switch options become on/off flags."""
    params = []
    for path, f, spec in options_of(cls):
        if not spec.cli or path[-1] in exclude:
            continue
        default = _default_of(cls, path)
        if spec.switches is not None:
            for value, flag in spec.switches.items():
                params.append(inspect.Parameter(
                    _switch_name(path, value), inspect.Parameter.KEYWORD_ONLY, default=False,
                    annotation=Annotated[bool, typer.Option(flag, help=f"{f.name} = {value}. {spec.help}")]))
            continue
        help_text = spec.help
        if spec.choices is not None and not all(str(c) in help_text for c in spec.choices):
            help_text += f" One of {', '.join(map(str, spec.choices))}."
        params.append(inspect.Parameter(
            _param_name(path), inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[Optional[str], typer.Option(
                *flags_of(f), help=f"{help_text}  [default: {_shown(spec, default)}]", show_default=False,
                metavar=_METAVARS.get(spec.kind, "TEXT"))]))
    return params


def _parse_number(text: str, flag: str, integral: bool) -> Any:
    try:
        return int(text) if integral else float(text)
    except ValueError:
        what = "a whole number" if integral else "a number"
        raise ConfigError(f"{flag} must be {what}, not {text!r}", "") from None


def _parse(text: str, spec: OptionSpec, flag: str) -> Any:
    """A value typed on the command line, as the field's kind holds it (checks are the config's)."""
    kind = spec.kind
    if kind == "int":
        value = _parse_number(text, flag, True)
        return None if spec.zero_is_none and value == 0 else value
    if kind == "float":
        value = _parse_number(text, flag, False)
        return None if spec.zero_is_none and value == 0 else value
    if kind == "size":
        if text.strip().lower() == "auto":
            return "auto"
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{flag} must be a whole number of px or auto, not {text!r}", "") from None
    if kind in ("names", "floats", "ints"):
        if not text.strip():
            return ()  # explicitly none (e.g. no content layers)
        items = [x.strip() for x in text.split(",")]
        if any(not x for x in items):
            raise ConfigError(f"{flag} has an empty item in {text!r}; separate values by single commas, "
                              "e.g. 0.7,0.3", "")
        if kind == "names":
            return tuple(items)
        try:
            return tuple(int(x) if kind == "ints" else float(x) for x in items)
        except ValueError:
            what = "whole numbers, e.g. 256,512" if kind == "ints" else "numbers, e.g. 0.7,0.3"
            raise ConfigError(f"{flag} must be comma-separated {what}, not {text!r}", "") from None
    return text


def config_from_cli(cls: type, values: Mapping[str, Any], *, base: Any = None) -> Any:
    """The config a command's option values describe: every option given replaces the default."""
    options: dict[str, Any] = {}
    for path, f, spec in options_of(cls):
        if spec.switches is not None:
            on = [(value, flag) for value, flag in spec.switches.items() if values.get(_switch_name(path, value))]
            if len(on) > 1:
                raise typer.BadParameter(f"use either {' or '.join(flag for _v, flag in on)}, not both")
            if on:
                options[path[-1]] = on[0][0]
            continue
        text = values.get(_param_name(path))
        if text is not None:
            options[path[-1]] = _parse(text, spec, flags_of(f)[0])
    return resolve_config(cls, base, options, owner="options")


def flag_for(param: str, *configs: type) -> str | None:
    """The flag(s) a user types for the config field ``param``."""
    for cls in configs:
        for path, f, spec in options_of(cls):
            if path[-1] == param:
                if spec.switches is not None:
                    return "/".join(spec.switches.values())
                return flags_of(f)[0]
    return None


#: Parameters of library calls (not config fields) that the commands take as flags of the same name.
COMMAND_FLAGS = {"force": "--force", "image": "--image", "audio": "--audio", "resume": "--resume",
                 "executor": "--executor", "address": "--address", "workers": "--workers", "threads": "--threads"}


def flag_message(message: str, param: str | tuple[str, ...] | None, *configs: type) -> str:
    """``message`` with the field name(s) ``param`` written as flags (``image_size 8`` -> ``--image-size 8``)."""
    for name in ((param,) if isinstance(param, str) else param or ()):
        flag = (flag_for(name, *configs) or COMMAND_FLAGS.get(name)) if name else None
        if flag is not None:
            message = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag, message)
    return message


def make_command(name: str, doc: str, params: list[inspect.Parameter], body: Callable[..., None]) -> Callable[..., None]:
    """A function typer can read: the given parameters as its signature, calling ``body(**values)``."""
    def command(**values: Any) -> None:
        body(**values)

    command.__name__ = name
    command.__doc__ = doc
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``["image_size=256", "style_layers=relu1_1,relu2_1"]`` -> options by config name, each value parsed by
    the kind its field declares (in either config); a name neither config has is refused."""
    from nst_audio.stylize import AudioStyleConfig
    from nst_image.stylize import ImageStyleConfig

    specs = {}
    for cls in (ImageStyleConfig, AudioStyleConfig):
        for path, f, spec in options_of(cls):
            specs.setdefault(path[-1], spec)
            for alias in spec.aliases:
                specs.setdefault(alias, spec)
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ConfigError(f"--set takes NAME=VALUE, not {item!r}", "")
        if name not in specs:
            raise ConfigError(f"--set {name}: no such option; use the names of nst image / nst audio options "
                              "with underscores, e.g. image_size", "")
        out[name] = _parse(text.strip(), specs[name], f"--set {name}")
    return out
