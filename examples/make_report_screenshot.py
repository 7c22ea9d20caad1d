"""Screenshot of a comparison report for the README, taken by headless Chromium from the file on disk.

    python examples/make_report_screenshot.py examples/out/report/index.html examples/figure_report.png

Renders the page at 1300 px wide, keeps the first ``--height`` px of it and scales it to ``--width`` px
wide. Needs Debian's ``chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="index.html of a report")
    ap.add_argument("out", type=Path, help="PNG to write")
    ap.add_argument("--height", type=int, default=5200, help="page height to render, px")
    ap.add_argument("--width", type=int, default=1000, help="width of the saved picture, px")
    args = ap.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("error: chromium not found; install it with apt-get install chromium", file=sys.stderr)
        return 1
    if not args.report.is_file():
        print(f"error: {args.report} does not exist; make it with nst compare", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--disable-background-networking", f"--window-size=1300,{args.height}",
                        f"--screenshot={shot}", args.report.resolve().as_uri()],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        img = Image.open(shot).convert("RGB")
    # Drop the blank space below the end of the page.
    pixels = np.asarray(img)
    busy = np.nonzero((pixels != pixels[:, :1]).any(axis=(1, 2)))[0]  # rows that are not one flat colour
    if busy.size:
        img = img.crop((0, 0, img.width, min(img.height, int(busy[-1]) + 24)))
    img = img.resize((args.width, round(img.height * args.width / img.width)), Image.LANCZOS)
    img.save(args.out, optimize=True)
    print(f"wrote {args.out} ({img.width}x{img.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
