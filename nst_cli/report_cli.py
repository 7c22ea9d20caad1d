"""``nst compare`` and ``nst report``: the image-versus-audio comparison report from the command line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, List, Optional, Tuple

import typer

from nst_core.config import resolve_config
from nst_core.device import DEVICES, PRECISIONS

# Defaults that depend on the device: a GPU gets the full settings, a CPU a run of a few minutes (a smaller
# picture, and audio capped at 100 steps: the VGG reading the spectrogram takes about 2 s a step there). The
# image runs until the stopping rule ends it either way (500 steps at most).
GPU_DEFAULTS = {"image_size": 512, "iterations": 500, "audio_iterations": 300}
CPU_DEFAULTS = {"image_size": 256, "iterations": 500, "audio_iterations": 100}


def _say(msg: str) -> None:
    typer.echo(msg, err=True)


def compare_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="Report folder: index.html, metrics.json, runs/.")],
    image: Annotated[Optional[Tuple[Path, Path]], typer.Option(metavar="CONTENT STYLE", help="Image pair.")] = None,
    audio: Annotated[Optional[Tuple[Path, Path]], typer.Option(metavar="CONTENT STYLE", help="Audio pair.")] = None,
    image_size: Annotated[Optional[int], typer.Option(min=16, help="Long side of the image result in px (default: 512 on a GPU, 256 on a CPU).")] = None,
    iterations: Annotated[Optional[int], typer.Option(min=1, help="Most image steps; the stopping rule usually ends sooner (default: 500).")] = None,
    audio_iterations: Annotated[Optional[int], typer.Option(min=1, help="Audio steps per run (default: 300 on a GPU, 100 on a CPU).")] = None,
    weights: Annotated[str, typer.Option(help="Image backbone weights, also read the spectrogram: auto, torchvision, vgg16-hed, random, or a file.")] = "auto",
    vgg_audio: Annotated[bool, typer.Option("--vgg-audio/--no-vgg-audio", help="Also stylize the audio pair with the image backbone reading the spectrogram.")] = True,
    device: Annotated[str, typer.Option(help=", ".join(DEVICES))] = "auto",
    precision: Annotated[str, typer.Option(help=", ".join(PRECISIONS))] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for reproducible results.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace a report (and its runs) already in the folder.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Stylize an image pair and an audio pair, then write a report comparing what the method does on each."""
    from nst_audio.stylize import AudioStyleConfig
    from nst_core import resolve_device
    from nst_image.stylize import ImageStyleConfig
    from nst_jobs import format_command, run_comparison

    from .progress import ProgressBar

    if image is None and audio is None:
        raise typer.BadParameter("give --image CONTENT STYLE, --audio CONTENT STYLE, or both")
    defaults = GPU_DEFAULTS if resolve_device(device).type == "cuda" else CPU_DEFAULTS
    image_size = image_size or defaults["image_size"]
    iterations = iterations or defaults["iterations"]
    audio_iterations = audio_iterations or defaults["audio_iterations"]
    icfg = resolve_config(ImageStyleConfig, None, dict(image_size=image_size, iterations=iterations, weights=weights,
                                                        device=device, precision=precision, seed=seed), owner="options")
    acfg = resolve_config(AudioStyleConfig, None, dict(iterations=audio_iterations, device=device, precision=precision,
                                                        seed=seed), owner="options")
    argv = ["nst", "compare"]
    if image is not None:
        argv += ["--image", str(image[0]), str(image[1]), "--image-size", str(image_size),
                 "--iterations", str(iterations)]
    if audio is not None:
        argv += ["--audio", str(audio[0]), str(audio[1]), "--audio-iterations", str(audio_iterations)]
        if not vgg_audio:
            argv.append("--no-vgg-audio")
    argv += ["--weights", weights, "--device", device, "--precision", precision, "--seed", str(seed),
             "-o", str(output)]
    index = run_comparison(output, image=image, audio=audio, image_config=icfg, audio_config=acfg,
                           weights=weights, vgg_audio=vgg_audio, force=force, command=format_command(argv),
                           progress=(lambda desc: ProgressBar(desc=desc)) if progress else None, log=_say)
    typer.echo(f"wrote {index} (open it in a browser) and {index.with_name('metrics.json')}")


def report_cmd(
    traces: Annotated[List[Path], typer.Argument(metavar="TRACES", help="Run traces (.trace.json beside nst results), or the output folder of nst batch (it holds batch.json) for a page over the whole batch.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Report folder: index.html and metrics.json (required for traces; default for a batch folder: BATCH/report).")] = None,
    title: Annotated[Optional[str], typer.Option(help="Heading of the page (default: the comparison report's heading; 'Batch NAME' for a batch).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a report already in the folder.")] = False,
) -> None:
    """Write a report over earlier runs, from their traces; or, given the output folder of nst batch, a page
    over the whole batch: a contact sheet of every job and a table of their metrics."""
    from nst_jobs import build_batch_report, build_report

    folders = [p for p in traces if p.is_dir()]
    if len(folders) > 1:
        raise typer.BadParameter("give one batch folder at a time (each gets its own page)")
    if folders and len(traces) > 1:
        raise typer.BadParameter(f"give a batch folder ({folders[0]}) or trace files, not both; make their "
                                 "pages with separate nst report commands")
    if folders:
        index = build_batch_report(folders[0], output, force=force, title=title, log=_say)
    else:
        if output is None:
            raise typer.BadParameter("give the report folder with -o/--output (a report over traces needs one; "
                                     "only a batch folder has a default)")
        kw = {} if title is None else {"title": title}
        index = build_report(traces, output, force=force, log=_say, **kw)
    typer.echo(f"wrote {index} (open it in a browser) and {index.with_name('metrics.json')}")


def batch_cmd(
    source: Annotated[Path, typer.Argument(metavar="SOURCE", help="A folder of inputs (with --style) or a .toml manifest of jobs.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output folder: results mirror the inputs' layout; batch.json records every job.")],
    style: Annotated[Optional[List[Path]], typer.Option("--style", help="Style file for a folder of inputs (repeat for several: one subfolder each).")] = None,
    set_: Annotated[Optional[List[str]], typer.Option("--set", metavar="NAME=VALUE", help="An option for every job of a folder, by its config name, e.g. --set image_size=256 --set iterations=100.")] = None,
    executor: Annotated[str, typer.Option(help="local: worker processes on this machine; ray: tasks on a Ray cluster (pip install 'nst-toolkit[ray]').")] = "local",
    address: Annotated[Optional[str], typer.Option(help="Ray cluster to join: auto or HOST:PORT (default: start a local one). Outputs must be on a path every node can reach.")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="Jobs at a time: local worker processes (default one per GPU, else 1), or per Ray node on the CPU.")] = None,
    threads: Annotated[Optional[int], typer.Option(min=0, help="Intra-op threads per worker (default: the cores divided among the workers; 0: PyTorch's default, every core each).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Finish a batch in this output folder: skip what is done, continue checkpoints.")] = False,
    checkpoint_every: Annotated[int, typer.Option(min=0, help="Jobs save a checkpoint beside their output every N steps (0: only on Ctrl-C), so a killed batch loses at most N steps of each running job.")] = 0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Bars for the batch and each worker's job, a line per finished job.")] = True,
) -> None:
    """Stylize many files: every file of a folder with one or more styles, or the jobs of a manifest."""
    from nst_core import JobsFailed
    from nst_jobs.batch import check_batch_folder, check_jobs, jobs_from_folder, jobs_from_manifest, run_batch
    from nst_jobs.executors import make_executor

    from .options import parse_assignments
    from .progress import BatchProgress, first_ctrl_c_stops_at_a_step, summary_table

    if source.is_dir():
        jobs = jobs_from_folder(source, style or [], output, parse_assignments(set_ or []))
    else:
        if style or set_:
            raise typer.BadParameter("--style and --set are for a folder of inputs; a manifest sets them per job")
        jobs = jobs_from_manifest(source, output)
    check_jobs(jobs)  # every input and option before any work (run_batch checks again: it is cheap)
    check_batch_folder(output, resume=resume)
    ex = make_executor(executor, workers=workers, threads=threads, address=address)
    start = time.perf_counter()
    parallel = getattr(ex, "n", None) or workers or 1
    bars = BatchProgress(len(jobs), parallel=parallel, enabled=progress)
    bars.outputs = {i: Path(j.output).name for i, j in enumerate(jobs)}
    if progress:
        _say(f"{len(jobs)} job(s) -> {output}")
    try:
        with first_ctrl_c_stops_at_a_step() as stop:
            result = run_batch(jobs, output, executor=ex, resume=resume, checkpoint_every=checkpoint_every,
                               on_record=bars.on_record, on_event=bars.on_event,
                               log=bars.write, should_stop=stop.is_set)
    finally:
        bars.close()
    counts = bars.counts
    typer.echo(summary_table(result.records))
    typer.echo(f"batch: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed in "
               f"{time.perf_counter() - start:.1f} s; every job in {result.path}")
    if not result.ok:
        raise JobsFailed(f"{counts['failed']} of {len(jobs)} job(s) failed ({counts['done']} done, "
                         f"{counts['skipped']} skipped); the errors are in {result.path}")


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_cmd)
    app.command("report")(report_cmd)
    app.command("batch")(batch_cmd)
