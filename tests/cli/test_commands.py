"""`nst_jobs.commands`: the command rebuilt from a trace must give the CLI back the very config and inputs of the run.

The round trips build a trace as the stylize functions do (``run_trace`` over ``dataclasses.asdict(cfg)``, or
the bare dict), turn it into a command, put the command through ``format_command`` and ``shlex.split`` as a
shell would, and run it through ``nst_cli.main.main`` with ``stylize_image`` / ``stylize_audio`` replaced by a
stub that records what it is given and stops the run. No model is built and nothing is optimized, except in
the two end-to-end tests at the bottom (a 32 px image and a 1.5 s clip, a second or two each on a CPU).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

import pytest
import soundfile as sf
import torch

import nst_audio.extractors
import nst_audio.stylize
import nst_image
import nst_image.weights
from nst_audio.stylize import AudioStyleConfig
from nst_core.config import config_settings, options_of
from nst_jobs.commands import command_for_trace, config_for_trace, format_command
from nst_cli.main import main
from nst_core import InputError, run_trace
from nst_image.stylize import ImageStyleConfig

AUDIO = Path(__file__).resolve().parents[2] / "examples" / "audio"


class Stop(Exception):
    """Raised by the stubs: the CLI got as far as calling the library."""


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """Input files (any bytes will do: the stubs read nothing) and output paths; one name has spaces."""
    names = {"content": "content.png", "style": "style one.png", "style2": "style2.jpg", "init": "init image.png",
             "clip": "content.wav", "clip_style": "style one.flac", "clip_style2": "rain.wav",
             "weights_file": "my weights.pth"}
    out = {}
    for key, name in names.items():
        out[key] = tmp_path / name
        out[key].write_bytes(b"not read")
    out["out_image"] = tmp_path / "result.png"
    out["out_audio"] = tmp_path / "result.wav"
    return out


@pytest.fixture
def seen(monkeypatch) -> dict:
    """Stub the library calls the commands make; returns what they were called with."""
    calls: dict = {}

    def stylize_image(content, styles, config, **_):
        calls.update(content=content, styles=list(styles), config=config)
        raise Stop

    def stylize_audio(content, styles, config, **_):
        calls.update(content=content, styles=list(styles), config=config)
        raise Stop

    monkeypatch.setattr(nst_image, "stylize_image", stylize_image)
    monkeypatch.setattr(nst_audio.stylize, "stylize_audio", stylize_audio)
    monkeypatch.setenv("NST_DEBUG", "1")  # main() re-raises Stop instead of reporting an internal error
    return calls


def _trace(modality: str, cfg, content, styles, output, *, as_json: bool = True, **extra) -> dict:
    """A trace as stylize_image / stylize_audio write it (as_json: read back from its file, lists for tuples)."""
    inputs = {"content": None if content is None else str(content), "styles": [str(s) for s in styles]}
    if modality == "image":
        inputs["init"] = cfg.init
    if not as_json:
        return {"modality": modality, "inputs": inputs, "output": str(output),
                "settings": config_settings(cfg), **extra}
    doc = run_trace(modality=modality, settings=config_settings(cfg), runs=[], inputs=inputs,
                    output=str(output), extra=extra)
    return json.loads(json.dumps(doc))


def _replay(trace: dict, seen: dict) -> list[str]:
    """Run the trace's command as a shell would; check the library got the run's config and inputs."""
    argv = command_for_trace(trace)
    assert argv[:2] == ["nst", trace["modality"]]
    assert "--no-progress" not in argv and "--progress" not in argv
    assert shlex.split(format_command(argv)) == argv
    with pytest.raises(Stop):
        main(shlex.split(format_command(argv))[1:])
    inputs = trace["inputs"]
    assert (None if seen["content"] is None else os.fspath(seen["content"])) == inputs["content"]
    assert [os.fspath(s) for s in seen["styles"]] == inputs["styles"]
    return argv


def _settings(trace: dict):
    return config_for_trace(trace)


# ------------------------------------------------------------------------------------- round trips: image

IMAGE_CONFIGS = {
    "two-styles-blended": dict(style_blend_weights=(0.7, 0.3), style_weight=5.0, content_weight=0.5, seed=0),
    "luminance-only": dict(original_colors="luminance", tv_weight=0.0, image_size=256),
    "original-colors-and-scales": dict(original_colors="chroma", image_size=1024, scales=(256, 512), style_scale=0.5),
    "init-from-file": dict(init="FILE:init", seed=3),
    "adam-with-learning-rate": dict(optimizer="adam", learning_rate=0.05, iterations=40, log_every=5, save_every=10),
    "vgg16-avg-pooling": dict(backbone="vgg16", pooling="avg", weights="random", weights_layout="caffe",
                              content_layers=("relu3_2",), style_layers=("relu1_1", "relu2_1"), history_size=20,
                              device="cpu", precision="fp32"),
    "style-only-from-noise": dict(init="noise", content_layers=(), style_weight=1e-05, seed=7),
    "weights-file-with-space": dict(weights="FILE:weights_file", weights_layout="torchvision", scales=()),
}


def _resolve(changes: dict, files: dict) -> dict:
    """Values "FILE:key" name one of the fixture's files."""
    return {k: str(files[v[5:]]) if isinstance(v, str) and v.startswith("FILE:") else v for k, v in changes.items()}


@pytest.mark.parametrize("as_json", [False, True], ids=["dict", "json"])
@pytest.mark.parametrize("name", list(IMAGE_CONFIGS))
def test_image_round_trip(name, as_json, files, seen):
    cfg = ImageStyleConfig.of(**_resolve(IMAGE_CONFIGS[name], files))
    styles = [files["style"], files["style2"]]
    trace = _trace("image", cfg, files["content"], styles, files["out_image"], as_json=as_json)
    argv = _replay(trace, seen)
    assert seen["config"] == cfg, argv
    assert argv[argv.index("-o") + 1] == str(files["out_image"])


# A non-default value for every ImageStyleConfig option (nested optimizer options included): each alone must
# survive the round trip through the command line.
IMAGE_ALTERNATIVES = {
    "image_size": 256, "style_scale": 0.5, "content_weight": 0.0, "style_weight": 100.0, "tv_weight": 0.25,
    "content_layers": ("relu3_2", "relu4_2"), "style_layers": ("relu1_1",), "style_blend_weights": (0.7, 0.3),
    "init": "noise", "original_colors": "chroma", "scales": (256,), "backbone": "vgg16", "weights": "random",
    "weights_layout": "caffe", "pooling": "avg", "steps": 7, "optimizer": "adam", "learning_rate": 0.02,
    "history_size": 5, "history_precision": "bf16", "tile": 256, "log_every": 1, "max_step": 0.5, "save_every": 25, "device": "cpu", "precision": "fp32",
    "seed": 1234, "tolerance": 0.0, "stop_window": 40, "min_steps": 30, "threads": 1,
}


@pytest.mark.parametrize("field", [path[-1] for path, _f, _s in options_of(ImageStyleConfig)])
def test_every_image_setting_round_trips(field, files, seen):
    assert field in IMAGE_ALTERNATIVES, f"new ImageStyleConfig option {field}: give it a value here"
    cfg = ImageStyleConfig.of(**{field: IMAGE_ALTERNATIVES[field]})
    assert cfg != ImageStyleConfig()
    trace = _trace("image", cfg, files["content"], [files["style"], files["style2"]], files["out_image"])
    argv = _replay(trace, seen)
    assert seen["config"] == cfg, argv


# ------------------------------------------------------------------------------------- round trips: audio

AUDIO_CONFIGS = {
    "two-styles-blended": dict(style_blend_weights=(0.25, 0.75), content_weight=2.0, seed=0),
    "texture-with-duration": dict(mode="texture", duration=4.5, sample_rate=16000, n_fft=1024, hop_length=256,
                                  window="hamming"),
    "style-only-mid-side": dict(mode="style-from-content", channels="mid-side", griffin_lim_iters=50,
                                griffin_lim_momentum=0.5),
    "stereo-mel-multi-cnn": dict(channels="stereo", n_mels=64, extractor="multi-random-cnn", filters=512,
                                 kernel_size=5, extractor_seed=7),
    "vgg-custom-layers": dict(extractor="vgg", weights="random", pooling="avg", content_layers=("relu3_1",),
                              style_layers=("relu1_1", "relu2_1")),
    "no-max-step-adam": dict(max_step=None, optimizer="adam", learning_rate=0.1, history_size=10, iterations=50,
                             log_every=5),
    "chunks-init-noise": dict(chunk_seconds=10.0, chunk_overlap_seconds=0.5, init="noise", device="cpu",
                              precision="fp32", seed=11),
    "small-max-step-empty-layers": dict(max_step=0.25, content_layers=(), style_weight=1e6),
}


def _audio_inputs(cfg: AudioStyleConfig, files: dict):
    styles = [files["clip_style"], files["clip_style2"]]
    return (None if cfg.mode == "texture" else files["clip"]), styles


@pytest.mark.parametrize("as_json", [False, True], ids=["dict", "json"])
@pytest.mark.parametrize("name", list(AUDIO_CONFIGS))
def test_audio_round_trip(name, as_json, files, seen):
    cfg = AudioStyleConfig.of(**AUDIO_CONFIGS[name])
    content, styles = _audio_inputs(cfg, files)
    trace = _trace("audio", cfg, content, styles, files["out_audio"], as_json=as_json)
    argv = _replay(trace, seen)
    assert seen["config"] == cfg, argv
    assert ("--weights" in argv) == (cfg.weights != "auto")


AUDIO_ALTERNATIVES = {
    "mode": dict(mode="style-from-content"), "sample_rate": 16000, "n_fft": 1024, "hop_length": 256,
    "window": "blackman", "n_mels": 80, "extractor": "multi-random-cnn", "filters": 256, "kernel_size": 3,
    "extractor_seed": 5, "content_weight": 0.5, "style_weight": 1e6, "content_layers": ("relu1",),
    "style_layers": ("relu1",), "style_blend_weights": (1.0, 3.0), "init": "noise",
    "duration": dict(mode="texture", duration=2.5), "channels": "stereo", "griffin_lim_iters": 0,
    "griffin_lim_momentum": 0.0, "chunk_seconds": 12.5, "chunk_overlap_seconds": 0.0, "steps": 20,
    "optimizer": "adam", "learning_rate": 0.01, "history_size": 3, "history_precision": "bf16", "max_step": None,
    "log_every": 2,
    "device": "cpu", "precision": "fp32", "seed": 0, "tolerance": 0.05, "stop_window": 40, "min_steps": 30,
    "threads": 1,
    "backbone": dict(extractor="vgg", backbone="vgg16"), "weights": dict(extractor="vgg", weights="FILE:weights_file"),
    "weights_layout": dict(extractor="vgg", weights_layout="caffe"), "pooling": dict(extractor="vgg", pooling="avg"),
}


@pytest.mark.parametrize("field", [path[-1] for path, _f, _s in options_of(AudioStyleConfig)])
def test_every_audio_setting_round_trips(field, files, seen):
    assert field in AUDIO_ALTERNATIVES, f"new AudioStyleConfig option {field}: give it a value here"
    alt = AUDIO_ALTERNATIVES[field]
    cfg = AudioStyleConfig.of(**_resolve(alt if isinstance(alt, dict) else {field: alt}, files))
    assert cfg != AudioStyleConfig()
    content, styles = _audio_inputs(cfg, files)
    trace = _trace("audio", cfg, content, styles, files["out_audio"])
    argv = _replay(trace, seen)
    assert seen["config"] == cfg, argv


def test_a_version_1_trace_of_a_vgg_audio_run_gives_its_weights(files, seen):
    """nst-trace/1 kept the vgg weights beside the settings (extractor_weights) and the optimizer options flat."""
    cfg = AudioStyleConfig.of(extractor="vgg", weights="random", iterations=12)
    trace = _trace("audio", cfg, files["clip"], [files["clip_style"]], files["out_audio"])
    flat = {k: v for k, v in trace["settings"].items() if k not in ("optimize", "weights")}
    flat.update(iterations=12, optimizer="lbfgs", learning_rate=None, history_size=100, max_step=1.0, log_every=20)
    old = {**trace, "format": "nst-trace/1", "settings": flat, "extractor_weights": "random"}
    argv = _replay(old, seen)
    assert argv[argv.index("--weights") + 1] == "random" and argv[argv.index("--iterations") + 1] == "12"
    assert seen["config"] == cfg


def test_inputs_named_like_options_follow_a_double_dash(files, seen, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(files["content"], "-content.png")
    cfg = ImageStyleConfig(style_weight=3.0)
    trace = _trace("image", cfg, "-content.png", [files["style"]], "out.png")
    argv = _replay(trace, seen)
    assert argv[-3:] == ["--", "-content.png", str(files["style"])]
    assert seen["config"] == cfg


# ------------------------------------------------------------------------------------------ short commands


@pytest.mark.parametrize("seed,extra", [(None, []), (0, ["--seed", "0"])])
def test_default_image_config_gives_inputs_output_and_seed_only(seed, extra, files):
    trace = _trace("image", ImageStyleConfig(seed=seed), files["content"], [files["style"]], files["out_image"])
    assert command_for_trace(trace) == ["nst", "image", str(files["content"]), str(files["style"]),
                                        "-o", str(files["out_image"]), *extra]


@pytest.mark.parametrize("seed,extra", [(None, []), (42, ["--seed", "42"])])
def test_default_audio_config_gives_inputs_output_and_seed_only(seed, extra, files):
    trace = _trace("audio", AudioStyleConfig(seed=seed), files["clip"], [files["clip_style"]], files["out_audio"])
    assert command_for_trace(trace) == ["nst", "audio", str(files["clip"]), str(files["clip_style"]),
                                        "-o", str(files["out_audio"]), *extra]


def test_output_argument_replaces_the_traced_output(files):
    trace = _trace("image", ImageStyleConfig(), files["content"], [files["style"]], files["out_image"])
    argv = command_for_trace(trace, output="again/result 2.png")
    assert argv[argv.index("-o") + 1] == "again/result 2.png"
    assert str(files["out_image"]) not in argv


def test_format_command_quotes_spaces_and_shell_characters():
    argv = ["nst", "image", "my content.png", "it's.png", "-o", "out $HOME;*.png", "--style-weight", "5.0"]
    line = format_command(argv)
    assert shlex.split(line) == argv
    assert "'my content.png'" in line and line.startswith("nst image ")


# ------------------------------------------------------------------------------------------ not reproducible


@pytest.mark.parametrize("modality,content,styles,needle", [
    ("image", "<tensor>", ["s.png"], "<tensor>"),
    ("image", "c.png", ["s.png", "<tensor>"], "<tensor>"),
    ("audio", "<clip>", ["s.wav"], "<clip>"),
    ("audio", "c.wav", ["<clip>"], "<clip>"),
])
def test_inputs_in_memory_cannot_be_reproduced(modality, content, styles, needle):
    cfg = ImageStyleConfig() if modality == "image" else AudioStyleConfig()
    trace = _trace(modality, cfg, content, styles, "out.png" if modality == "image" else "out.wav")
    with pytest.raises(InputError, match=needle):
        command_for_trace(trace)


def _error(trace: dict, **kw) -> str:
    with pytest.raises(InputError) as info:
        command_for_trace(trace, **kw)
    msg = str(info.value)
    assert "\n" not in msg and msg
    return msg


def test_other_traces_that_cannot_be_reproduced():
    image = _trace("image", ImageStyleConfig(), "c.png", ["s.png"], "o.png")
    assert "modality" in _error({**image, "modality": "video"})
    assert "output" in _error({**image, "output": None})
    assert "future_knob" in _error({**image, "settings": {**image["settings"], "future_knob": 1}})
    assert "original_colors" in _error({**image, "settings": {**image["settings"], "original_colors": "sepia"}})
    assert "content" in _error({**image, "inputs": {**image["inputs"], "content": None}})
    assert "style" in _error({**image, "inputs": {**image["inputs"], "styles": []}})

    # texture mode from a content clip (the API allows it; nst audio --texture takes style clips only)
    texture = _trace("audio", AudioStyleConfig(mode="texture"), "c.wav", ["s.wav"], "o.wav")
    assert "texture" in _error(texture)


# --------------------------------------------------------------------------- the CLI's side: new audio flags


@pytest.mark.parametrize("args,weights", [(["--extractor", "vgg", "--weights", "random"], "random"),
                                          (["--extractor", "vgg"], "auto")])
def test_audio_backbone_options_reach_the_config(args, weights, files, seen):
    with pytest.raises(Stop):
        main(["audio", str(files["clip"]), str(files["clip_style"]), "-o", str(files["out_audio"]), *args])
    assert seen["config"].extractor == "vgg" and seen["config"].weights == weights


def test_backbone_options_without_the_vgg_extractor_are_refused(files, seen, capsys):
    code = main(["audio", str(files["clip"]), str(files["clip_style"]), "-o", str(files["out_audio"]),
                 "--pooling", "avg"])
    err = capsys.readouterr().err
    assert code == 2 and "--pooling applies to --extractor vgg only" in err and len(err.splitlines()) == 1, err
    assert "config" not in seen


@pytest.mark.parametrize("args,needle", [
    (["--init", "silence"], "--init"),
    (["--texture", "--duration", "1", "--init", "content"], "--init content"),
    (["--griffin-lim-momentum", "1"], "--griffin-lim-momentum"),
    (["--griffin-lim-momentum", "-0.1"], "--griffin-lim-momentum"),
    (["--history-size", "0"], "--history-size"),
    (["--max-step", "-1"], "--max-step"),
    (["--max-step", "nan"], "--max-step"),
    (["--chunk-overlap", "-1"], "--chunk-overlap"),
])
def test_bad_new_audio_options_are_one_line_usage_errors(args, needle, files, seen, capsys):
    code = main(["audio", str(files["clip"]), str(files["clip_style"]), "-o", str(files["out_audio"]), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("nst: error:") and len(err.strip().splitlines()) == 1, err
    assert needle in err, err
    assert "config" not in seen  # refused before the library was called


def test_max_step_zero_means_no_limit(files, seen):
    with pytest.raises(Stop):
        main(["audio", str(files["clip"]), str(files["clip_style"]), "-o", str(files["out_audio"]), "--max-step", "0"])
    assert seen["config"].optimize.max_step is None
    with pytest.raises(Stop):
        main(["audio", str(files["clip"]), str(files["clip_style"]), "-o", str(files["out_audio"])])
    assert seen["config"].optimize.max_step == AudioStyleConfig().optimize.max_step == 1.0


# -------------------------------------------------------------------------------- end to end: real traces


@pytest.fixture
def one_thread():
    """One intra-op thread: the cores are shared, and OpenMP threads spin-wait on each other when one is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_real_image_trace_gives_back_its_command(demo_inputs, tmp_path, one_thread, capsys):
    content, style = tmp_path / "content.png", tmp_path / "my style.png"
    shutil.copy(demo_inputs["content_landscape"], content)
    shutil.copy(demo_inputs["style_mosaic"], style)
    out = tmp_path / "out.png"
    # flags in ImageStyleConfig's field order, as command_for_trace writes them
    argv = ["nst", "image", str(content), str(style), "-o", str(out), "--image-size", "32", "--style-weight", "5.0",
            "--weights", "random", "--iterations", "3", "--device", "cpu", "--seed", "0"]
    assert main([*argv[1:], "--no-progress"]) == 0, capsys.readouterr().err
    trace = json.loads((tmp_path / "out.trace.json").read_text())
    assert command_for_trace(trace) == argv


def test_real_audio_trace_gives_back_its_command(tmp_path, one_thread, capsys):
    def cut(src: str, dst: Path) -> Path:
        data, rate = sf.read(AUDIO / src, dtype="float32", always_2d=True)
        sf.write(dst, data[:int(1.5 * rate)], rate, subtype="PCM_16")
        return dst

    content, style = cut("melody_sine.wav", tmp_path / "content.wav"), cut("phrase_violin.wav", tmp_path / "s t.wav")
    out = tmp_path / "out.wav"
    argv = ["nst", "audio", str(content), str(style), "-o", str(out), "--style-only", "--filters", "256",
            "--griffin-lim-iters", "8", "--iterations", "10", "--max-step", "0", "--device", "cpu", "--seed", "0"]
    assert main([*argv[1:], "--no-progress"]) == 0, capsys.readouterr().err
    trace = json.loads((tmp_path / "out.trace.json").read_text())
    assert command_for_trace(trace) == argv
    assert _settings(trace) == AudioStyleConfig.of(mode="style-from-content", filters=256, griffin_lim_iters=8,
                                                iterations=10, max_step=None, device="cpu", seed=0)
