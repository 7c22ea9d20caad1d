"""nst batch: a folder or a manifest of jobs, each failing alone, nothing done twice, checked before any work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nst_jobs.batch import Job, jobs_from_folder, jobs_from_manifest, run_batch
from nst_run import assert_one_line_error, run

AUDIO = Path(__file__).resolve().parents[2] / "examples" / "audio"
TINY = ["--set", "image_size=32", "--set", "iterations=3", "--set", "weights=random", "--set", "seed=0",
        "--set", "device=cpu", "--no-progress"]


@pytest.fixture
def folder(tmp_path, demo_inputs):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    shutil.copy(demo_inputs["content_landscape"], photos / "a.png")
    shutil.copy(demo_inputs["content_portrait"], photos / "sub" / "b.png")
    shutil.copy(demo_inputs["style_swirls"], tmp_path / "swirls.png")
    shutil.copy(demo_inputs["style_mosaic"], tmp_path / "mosaic.png")
    return photos


def _batch(out: Path) -> dict:
    return json.loads((out / "batch.json").read_text())


def test_folder_with_one_style_mirrors_the_layout_and_a_broken_file_fails_alone(folder, tmp_path, capsys):
    (folder / "c.png").write_text("not a picture")
    out = tmp_path / "out"
    code, stdout, err = run(["batch", folder, "--style", tmp_path / "swirls.png", "-o", out, *TINY], capsys)
    assert code == 6 and "1 of 3 job(s) failed" in err, err
    assert "2 done, 0 skipped, 1 failed" in stdout
    assert (out / "a.png").is_file() and (out / "sub" / "b.png").is_file() and (out / "sub" / "b.trace.json").is_file()
    doc = _batch(out)
    states = {Path(r["job"]["output"]).name: r["state"] for r in doc["jobs"]}
    assert states == {"a.png": "done", "b.png": "done", "c.png": "failed"}
    failed = next(r for r in doc["jobs"] if r["state"] == "failed")
    assert "not an image" in failed["error"] and "\n" not in failed["error"]
    assert doc["counts"] == {"done": 2, "skipped": 0, "failed": 1, "interrupted": 0, "pending": 0}
    assert all(r["seconds"] >= 0 for r in doc["jobs"]) and doc["jobs"][0]["metrics"]["style"]


def test_nothing_is_done_twice_and_an_earlier_batch_needs_resume(folder, tmp_path, capsys):
    out = tmp_path / "out"
    style = tmp_path / "swirls.png"
    assert run(["batch", folder, "--style", style, "-o", out, *TINY], capsys)[0] == 0
    before = (out / "a.png").stat().st_mtime_ns
    code, _, err = run(["batch", folder, "--style", style, "-o", out, *TINY], capsys)
    assert_one_line_error(code, err, "holds a batch already", "--resume")
    assert code == 4
    code, stdout, err = run(["batch", folder, "--style", style, "-o", out, "--resume", *TINY], capsys)
    assert code == 0 and "0 done, 2 skipped, 0 failed" in stdout, err
    assert (out / "a.png").stat().st_mtime_ns == before
    # Other settings are other jobs: the same outputs are made again.
    code, stdout, _ = run(["batch", folder, "--style", style, "-o", out, "--resume", *TINY, "--set", "style_weight=3"],
                          capsys)
    assert code == 0 and "2 done, 0 skipped" in stdout


def test_several_styles_get_a_subfolder_each(folder, tmp_path):
    jobs = jobs_from_folder(folder, [tmp_path / "swirls.png", tmp_path / "mosaic.png"], tmp_path / "out")
    outs = sorted(str(Path(j.output).relative_to(tmp_path / "out")) for j in jobs)
    assert outs == ["mosaic/a.png", "mosaic/sub/b.png", "swirls/a.png", "swirls/sub/b.png"]


def test_manifest_with_defaults_globs_and_both_modalities(folder, tmp_path):
    shutil.copy(AUDIO / "melody_sine.wav", tmp_path / "melody.wav")
    shutil.copy(AUDIO / "phrase_violin.wav", tmp_path / "violin.wav")
    manifest = tmp_path / "jobs.toml"
    manifest.write_text('seed = 0\niterations = 3\ndevice = "cpu"\n\n'
                        '[[job]]\ncontent = "photos/**/*.png"\nstyle = "swirls.png"\nimage_size = 32\nweights = "random"\n\n'
                        '[[job]]\ncontent = "melody.wav"\nstyle = "violin.wav"\nfilters = 64\ngriffin_lim_iters = 4\n')
    jobs = jobs_from_manifest(manifest, tmp_path / "out")
    assert [j.kind for j in jobs] == ["image", "image", "audio"]
    assert jobs[0].config().optimize.steps == 3 and jobs[0].config().image_size == 32
    result = run_batch(jobs, tmp_path / "out")
    assert result.ok and result.count("done") == 3
    assert (tmp_path / "out" / "melody_violin.wav").is_file()


@pytest.mark.parametrize("body,line,needle", [
    ('iterations = 3\n[[job]]\ncontent = "photos/a.png"\nstyle = "swirls.png"\ncolour = "red"\n', 5, "unknown option 'colour'"),
    ('iterations = 0\n[[job]]\ncontent = "photos/a.png"\nstyle = "swirls.png"\n', 1, "steps must be a whole number"),
    ('[[job]]\ncontent = "photos/nothing*.png"\nstyle = "swirls.png"\n', 1, "matches no file"),
    ('[[job]]\ncontent = "photos/a.png"\n', 1, "has no style"),
    ('[[job\n', None, "not valid TOML"),
])
def test_manifest_problems_name_the_line_and_nothing_runs(body, line, needle, folder, tmp_path, capsys):
    manifest = tmp_path / "jobs.toml"
    manifest.write_text(body)
    code, _, err = run(["batch", manifest, "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, needle, *([f"jobs.toml:{line}:"] if line else []))
    assert code == 2 and not (tmp_path / "out").exists()


def test_a_missing_input_is_found_before_any_work(folder, tmp_path, capsys):
    manifest = tmp_path / "jobs.toml"
    manifest.write_text('[[job]]\ncontent = "photos/a.png"\nstyle = "gone.png"\n')
    code, _, err = run(["batch", manifest, "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, "gone.png", "does not exist")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_two_workers_split_the_cores_and_run_every_job(folder, tmp_path):
    jobs = jobs_from_folder(folder, [tmp_path / "swirls.png", tmp_path / "mosaic.png"], tmp_path / "out",
                            {"image_size": 32, "iterations": 3, "weights": "random", "seed": 0, "device": "cpu"})
    said = []
    result = run_batch(jobs, tmp_path / "out", workers=2, log=said.append)
    assert result.ok and result.count("done") == 4
    assert any("2 worker process(es), 1 thread(s) each" in m for m in said), said
    assert len({r["pid"] for r in result.records}) == 2  # both workers took jobs


def test_jobs_are_plain_dicts_both_ways(tmp_path):
    job = Job("image", "c.png", ["s.png"], "o.png", {"image_size": 64}, origin="m.toml:3")
    assert Job.from_dict(json.loads(json.dumps(job.to_dict()))) == job


@pytest.mark.slow
def test_a_batch_killed_or_stopped_mid_job_resumes_to_the_same_results(folder, tmp_path):
    """kill -9 during the second job: the first is skipped on resume, the second continues from its checkpoint,
    and every picture equals an uninterrupted batch's (CPU, one thread each, fixed seed). Ctrl-C during the
    first job: the same, after exit 130."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import numpy as np
    from PIL import Image

    args = ["batch", folder, "--style", tmp_path / "swirls.png", "--checkpoint-every", "5", "--no-progress",
            "--set", "image_size=48", "--set", "iterations=200", "--set", "tolerance=0", "--set", "weights=random", "--set", "seed=0",
            "--set", "device=cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")

    def nst(out, *extra):
        return subprocess.Popen([sys.executable, "-m", "nst_cli", *map(str, args), "-o", str(out), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    ref = nst(tmp_path / "ref")
    assert ref.wait(timeout=600) == 0, ref.stderr.read().decode()
    proc = nst(tmp_path / "out")
    ckpt = tmp_path / "out" / "sub" / "b.ckpt"  # the second job's checkpoint: the first is done by then
    end = time.time() + 300
    while not ckpt.exists():
        assert time.time() < end and proc.poll() is None, "the second job never saved a checkpoint"
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    again = nst(tmp_path / "out", "--resume")
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err.decode()
    assert "1 done, 1 skipped, 0 failed" in out.decode()
    for name in ("a.png", "sub/b.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / name)),
                              np.asarray(Image.open(tmp_path / "ref" / name))), name

    # Ctrl-C: the current job saves its checkpoint and best picture, the batch says how to go on, exit 130.
    proc = nst(tmp_path / "out2")
    first = tmp_path / "out2" / "a.ckpt"
    end = time.time() + 300
    while not first.exists():
        assert time.time() < end and proc.poll() is None, "the first job never saved a checkpoint"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err.decode()
    assert "batch interrupted" in err.decode() and "--resume" in err.decode() and "Traceback" not in err.decode()
    doc = json.loads((tmp_path / "out2" / "batch.json").read_text())
    assert doc["counts"]["interrupted"] == 1 and doc["counts"]["pending"] == 1
    assert (tmp_path / "out2" / "a.png").is_file() and first.is_file()
    again = nst(tmp_path / "out2", "--resume")
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0 and "2 done" in out.decode(), err.decode()
    for name in ("a.png", "sub/b.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out2" / name)),
                              np.asarray(Image.open(tmp_path / "ref" / name))), name


def test_an_output_of_the_wrong_kind_is_refused_before_any_work(folder, tmp_path, capsys):
    manifest = tmp_path / "jobs.toml"
    manifest.write_text('[[job]]\ncontent = "photos/a.png"\nstyle = "swirls.png"\noutput = "a.wav"\n')
    code, _, err = run(["batch", manifest, "-o", tmp_path / "out"], capsys)
    assert_one_line_error(code, err, "jobs.toml:1", "a.wav", ".png")
    assert code == 4 and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_dead_worker_loses_only_its_job_which_is_retried_once(folder, tmp_path):
    """kill -9 of a worker process while it runs a job: only that job is run again, on a fresh worker; the
    other worker's jobs go on untouched, and every job ends done."""
    import multiprocessing
    import os
    import signal

    jobs = jobs_from_folder(folder, [tmp_path / "swirls.png", tmp_path / "mosaic.png"], tmp_path / "out",
                            {"image_size": 32, "iterations": 200, "tolerance": 0.0, "weights": "random", "seed": 0,
                             "device": "cpu"})
    said, killed, started = [], [], {}  # 200 steps: the other worker is still running when the first job ends

    def on_event(worker, i, info):
        started.setdefault(worker, []).append(i) if info.get("state") == "started" else None

    def kill_one(_i, record):
        if not killed:
            victim = next(p for p in multiprocessing.active_children() if p.pid != record["pid"])
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    result = run_batch(jobs, tmp_path / "out", workers=2, on_record=kill_one, on_event=on_event, log=said.append)
    retried = [m for m in said if "died" in m and "retrying that job once" in m]
    assert killed and len(retried) == 1, said
    assert result.ok and result.count("done") == 4, [r.get("error") for r in result.records]
    assert sum(len(v) for v in started.values()) == 5  # four jobs, one of them twice


def test_a_worker_computes_a_style_once_for_every_job_that_uses_it(folder, tmp_path, monkeypatch):
    """Two photos, one style, one worker: the second job takes the style's Grams from the worker's cache, and its
    picture equals a run without the cache."""
    import numpy as np
    from PIL import Image

    import nst_jobs.batch
    from nst_image import stylize_image

    monkeypatch.setattr(nst_jobs.batch, "_WORKER", nst_jobs.batch._Worker())  # a fresh worker: nothing cached

    options = {"image_size": 32, "iterations": 3, "weights": "random", "seed": 0, "device": "cpu"}
    jobs = jobs_from_folder(folder, [tmp_path / "swirls.png"], tmp_path / "out", options)
    result = run_batch(jobs, tmp_path / "out", threads=1)
    assert result.ok
    targets = [r["targets"] for r in result.records]
    assert targets[0]["misses"] >= 1 and targets[1] == {"hits": targets[0]["misses"], "misses": 0}, targets
    alone = stylize_image(jobs[1].content, jobs[1].styles, **options)
    assert np.array_equal(np.asarray(Image.open(jobs[1].output)),
                          (alone.image.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8))


def test_out_of_memory_at_image_size_auto_is_retried_once_with_half_the_memory(folder, tmp_path, monkeypatch):
    import torch

    import nst_image

    real, calls = nst_image.stylize_image, []

    def short_of_memory(*args, **kwargs):
        calls.append(kwargs.get("memory_limit"))
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(nst_image, "stylize_image", short_of_memory)
    from PIL import Image

    Image.open(folder / "a.png").resize((64, 48)).save(folder / "a.png")  # auto is the content's own size: keep it small
    base = {"iterations": 3, "weights": "random", "seed": 0, "device": "cpu"}
    auto = jobs_from_folder(folder, [tmp_path / "swirls.png"], tmp_path / "auto", {**base, "image_size": "auto"})[:1]
    result = run_batch(auto, tmp_path / "auto")
    assert result.ok and "retried once with half the memory" in result.records[0]["retried"]
    assert calls[0] is None and calls[1] > 0
    calls.clear()  # a fixed size is the user's choice: no retry, a one-line error that says what to do
    fixed = jobs_from_folder(folder, [tmp_path / "swirls.png"], tmp_path / "fixed", {**base, "image_size": 32})[:1]
    result = run_batch(fixed, tmp_path / "fixed")
    assert len(calls) == 1 and result.count("failed") == 1
    assert "out of memory on the device" in result.records[0]["error"] and "image_size" in result.records[0]["error"]


def test_batch_progress_estimates_the_time_left_from_jobs_run_and_shows_each_worker(capsys):
    from nst_cli.progress import BatchProgress, summary_table

    bars = BatchProgress(10, parallel=2)
    bars.outputs = {0: "a.png", 1: "b.png"}
    assert bars.time_left() is None  # nothing run yet: no guess
    job = {"output": "out/a.png"}
    bars.on_event("worker 1", 0, {"step": 30, "total": 100, "segment": 1, "segments": 2})
    assert bars.workers["worker 1"].n == 130 and bars.workers["worker 1"].total == 200
    assert "worker 1: a.png 2/2" in bars.workers["worker 1"].desc
    bars.on_record(0, {"job": job, "state": "done", "seconds": 40.0, "worker": "worker 1"})
    bars.on_record(1, {"job": job, "state": "skipped", "seconds": 0.1})  # a skipped job says nothing of speed
    bars.on_record(2, {"job": job, "state": "failed", "seconds": 20.0, "error": "broken"})
    assert "worker 1" not in bars.workers  # its bar goes with its job
    assert bars.time_left() == 30.0 * 7 / 2  # mean of the jobs run, times the jobs left, over the workers
    bars.close()
    err = capsys.readouterr().err
    assert "[1/10] done" in err and "[3/10] failed  out/a.png (20.0 s): broken" in err
    table = summary_table([{"job": job, "state": "done", "seconds": 40.0, "steps": 100},
                           {"job": job, "state": "failed", "seconds": 2.0, "steps": None, "error": "broken"}])
    lines = table.splitlines()
    assert lines[0].split() == ["state", "seconds", "steps", "output"]
    assert lines[1].split() == ["done", "40.0", "100", "out/a.png"] and lines[2].endswith("(broken)")


def test_ray_jobs_ask_for_the_gpu_share_their_memory_estimate_needs(folder, tmp_path):
    from nst_jobs.ray_executor import GPU_FRACTION_STEP, gpu_fraction, job_memory_bytes

    gib = 1 << 30
    assert gpu_fraction(1 * gib, 80 * gib) == GPU_FRACTION_STEP  # small jobs share: 16 to a GPU at most
    assert gpu_fraction(20 * gib, 80 * gib) == 5 / 16  # 20 GiB + 25 % margin = 25 GiB: exactly 5/16 of 80 GiB
    assert gpu_fraction(21 * gib, 80 * gib) == 6 / 16  # 26.25 GiB: rounded up to the next sixteenth
    assert gpu_fraction(100 * gib, 80 * gib) == 1.0
    small, large = (Job("image", str(folder / "a.png"), [str(tmp_path / "swirls.png")], "o.png",
                        {"image_size": size}).to_dict() for size in (256, 1024))
    assert 12 <= job_memory_bytes(large) / job_memory_bytes(small) <= 17  # activations and history grow with pixels
    audio = Job("audio", str(AUDIO / "melody_sine.wav"), [str(AUDIO / "phrase_violin.wav")], "o.wav", {}).to_dict()
    assert 0 < job_memory_bytes(audio) < 8 * gib


@pytest.mark.slow
def test_local_workers_are_pinned_one_per_gpu(folder, tmp_path):
    """With GPUs (here named, the jobs on the CPU) there is one worker per GPU by default, each started with
    CUDA_VISIBLE_DEVICES naming its own GPU, so that `auto` in a worker is its GPU."""
    from nst_jobs.executors import LocalExecutor

    ex = LocalExecutor(gpus=["3", "5"])
    assert ex.n == 2 and not ex.in_process and "GPU(s) 3, 5" in ex.describe()
    jobs = jobs_from_folder(folder, [tmp_path / "swirls.png", tmp_path / "mosaic.png"], tmp_path / "out",
                            {"image_size": 32, "iterations": 40, "weights": "random", "seed": 0, "device": "cpu"})
    result = run_batch(jobs, tmp_path / "out", executor=ex)
    assert result.ok
    pinned = {(r["worker"], r["cuda_visible_devices"]) for r in result.records}
    assert pinned == {("worker 1 (GPU 3)", "3"), ("worker 2 (GPU 5)", "5")}, pinned
