"""``nst compare``: stylize an image pair and an audio pair with one backbone, then report on both."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from nst_core import InputError, OutputError, trace_path

from .report.build import build_report, check_report_folder

RUNS_FOLDER = "runs"


def _planned_outputs(out: Path, image, audio, vgg_audio: bool) -> dict[str, Path]:
    runs = out / RUNS_FOLDER
    plan: dict[str, Path] = {}
    if image is not None:
        plan["image"] = runs / f"image_{Path(image[0]).stem}_{Path(image[1]).stem}.png"
    if audio is not None:
        stem = f"audio_{Path(audio[0]).stem}_{Path(audio[1]).stem}"
        plan["audio"] = runs / f"{stem}_random-cnn.wav"
        if vgg_audio:
            plan["audio-vgg"] = runs / f"{stem}_vgg.wav"
    return plan


def run_comparison(out_dir: str | os.PathLike, *, image: Sequence[str | os.PathLike] | None = None,
                   audio: Sequence[str | os.PathLike] | None = None, image_config=None, audio_config=None,
                   weights: str = "auto", vgg_audio: bool = True, image_extractor=None, force: bool = False,
                   command: str | None = None, progress: Callable[[str], Any] | None = None,
                   log: Callable[[str], None] | None = None) -> Path:
    """Stylize ``image`` = (content, style) and ``audio`` = (content, style), then build the report.

    The audio pair is stylized by ``audio_config.extractor`` (random CNN by default) and, unless
    ``vgg_audio=False``, also by the image backbone reading the spectrogram, with the same settings.
    Results and their traces go to ``out_dir/runs/``; the report to ``out_dir/index.html``. Everything
    is checked before any work: existing results are replaced only with ``force``.
    ``image_extractor``: a ready backbone (by default built once from ``weights`` and shared).
    ``progress``: ``progress(description)`` returns a step callback for one run, with ``write(message)``
    and ``close()`` (the CLI's progress bar); None shows nothing.
    Returns the path of ``index.html``.
    """
    from nst_audio.io import check_audio_output, load_audio
    from nst_image.io import check_image_output, load_image

    say = log or (lambda _m: None)
    if image is None and audio is None:
        raise InputError("give an image pair (image=(content, style)), an audio pair (audio=(content, style)), or both",
                         ("image", "audio"))
    for pair, what in ((image, "image"), (audio, "audio")):
        if pair is not None and len(pair) != 2:
            raise InputError(f"{what} takes exactly two files, content and style; got {len(pair)}", what)
    inputs = [Path(p) for p in (image or [])] + [Path(p) for p in (audio or [])]
    for p in inputs:
        if not p.is_file():
            raise InputError(f"input {p} does not exist or is not a file; check the path")
    # Read every input now: a broken audio file should stop the run before the image's minutes of work.
    for p in image or []:
        load_image(p)
    for p in audio or []:
        load_audio(p, sample_rate=None)
    out = check_report_folder(out_dir, force=force, inputs=inputs)
    plan = _planned_outputs(out, image, audio, vgg_audio)
    for path in plan.values():
        for target in (path, trace_path(path)):
            if target.resolve() in {p.resolve() for p in inputs}:
                raise OutputError(f"{target} is also an input; choose another report folder so the input is kept")
            if target.exists() and not force:
                raise OutputError(f"{target} already exists; replace it with force, or choose another folder", "force")
    runs_dir = out / RUNS_FOLDER
    created = [d for d in (runs_dir, *runs_dir.parents) if not d.exists()]
    runs_dir.mkdir(parents=True, exist_ok=True)
    try:
        for key, path in plan.items():
            (check_image_output if key == "image" else check_audio_output)(path, inputs)
        return _run(out, plan, image, audio, image_config, audio_config, weights, vgg_audio, image_extractor,
                    command, progress, say)
    except BaseException:
        for d in created:  # innermost first: leave no empty folders behind a failed run
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


class _Quiet:
    def __call__(self, step) -> None:
        pass

    def write(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass


def _run(out: Path, plan: dict[str, Path], image, audio, image_config, audio_config, weights: str, vgg_audio: bool,
         image_extractor, command: str | None, progress, say: Callable[[str], None]) -> Path:
    from nst_audio.stylize import AudioStyleConfig, stylize_audio
    from nst_image.stylize import ImageStyleConfig, stylize_image
    from nst_image.weights import build_extractor

    from .extractors import spectrogram_vgg

    icfg = image_config or ImageStyleConfig()
    acfg = audio_config or AudioStyleConfig()
    if weights != icfg.weights:
        icfg = dataclasses.replace(icfg, weights=weights)
    backbone = image_extractor
    if backbone is None and (image is not None or (audio is not None and vgg_audio)):
        backbone = build_extractor(weights, backbone=icfg.backbone, pooling=icfg.pooling,
                                   layout=icfg.weights_layout, log=say)
    traces: list[Path] = []
    bar_for = progress or (lambda _desc: _Quiet())

    if image is not None:
        say(f"image: {Path(image[0]).name} in the style of {Path(image[1]).name}")
        pb = bar_for("image")
        try:
            result = stylize_image(image[0], [image[1]], icfg, extractor=backbone, callbacks=[pb], log=pb.write)
        finally:
            pb.close()
        result.save(plan["image"])
        traces.append(trace_path(plan["image"]))

    if audio is not None:
        runs = [("audio", acfg, None)]
        if vgg_audio:  # the same backbone and weights as the image run, read by the registry's vgg adapter
            vgg_cfg = dataclasses.replace(acfg, extractor="vgg", weights=weights, backbone=icfg.backbone,
                                          pooling=icfg.pooling, weights_layout=icfg.weights_layout)
            runs.append(("audio-vgg", vgg_cfg, spectrogram_vgg(backbone, weights=weights)))
        for key, cfg, extractor in runs:
            say(f"audio ({cfg.extractor}): {Path(audio[0]).name} with the timbre of {Path(audio[1]).name}")
            pb = bar_for(f"audio ({cfg.extractor})")
            extra = {"extractor": extractor} if extractor is not None else {}
            try:
                result = stylize_audio(audio[0], [audio[1]], cfg, callbacks=[pb], log=pb.write, **extra)
            finally:
                pb.close()
            result.save(plan[key])
            traces.append(trace_path(plan[key]))

    return build_report(traces, out, force=True, command=command, log=say)
