"""The HTML report rendered by headless Chromium: the charts and tables are really drawn.

Chromium (Debian package ``chromium``, installed by scripts/ensure_system_packages.sh) renders the
bundled-data report twice, in parallel: once to a 1280 x 4000 screenshot, once to its DOM
(``--dump-dom``). The DOM must hold every chart mark the engine's numbers call for; the PNG
(decoded here with zlib and numpy: no Pillow) must be that size, far from one colour, and show
the ranking bars in their band colour. Without Chromium the test skips, or fails when CI is set.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from sovrisk.service.reports.svg import BAND_COLOURS
from tests.test_reports import (
    BUNDLED_SAMPLES,
    Document,
    bundled_engine,
    bundled_html,
    check_chart_marks,
    check_trajectory_marks,
)

CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 4000
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    f"--window-size={WIDTH},{HEIGHT}",
]


def _chromium() -> str:
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if found:
        return found
    message = f"headless Chromium not found ({CHROMIUM}): run scripts/ensure_system_packages.sh"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def decode_png(data: bytes) -> npt.NDArray[np.uint8]:
    """An 8-bit, non-interlaced RGB or RGBA PNG as a height x width x channels array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, header = 8, None
    chunks: list[bytes] = []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if tag == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            chunks.append(body)
        elif tag == b"IEND":
            break
    assert header is not None, "no IHDR"
    width, height, depth, colour_type, _, _, interlace = header
    assert (depth, interlace) == (8, 0) and colour_type in (2, 6), header
    bpp = 3 if colour_type == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8)
    raw = raw.reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), dtype=np.uint8)
    prev = np.zeros(width * bpp, dtype=np.uint8)
    for y in range(height):
        kind, line = int(raw[y, 0]), raw[y, 1:]
        if kind == 0:
            cur = line.copy()
        elif kind == 1:  # Sub: a running sum per channel
            sums = np.cumsum(line.reshape(width, bpp).astype(np.uint32), axis=0)
            cur = (sums & 0xFF).astype(np.uint8).reshape(-1)
        elif kind == 2:  # Up
            cur = line + prev
        else:  # Average (3) or Paeth (4): left to right
            row, up = bytearray(line.tobytes()), prev.tobytes()
            for i in range(len(row)):
                a = row[i - bpp] if i >= bpp else 0
                b = up[i]
                if kind == 3:
                    row[i] = (row[i] + ((a + b) >> 1)) & 0xFF
                    continue
                c = up[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
            cur = np.frombuffer(bytes(row), dtype=np.uint8)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    chromium = _chromium()
    page = tmp_path / "report.html"
    page.write_bytes(bundled_html())
    url = page.as_uri()
    shot = tmp_path / "report.png"
    env = {**os.environ, "HOME": str(tmp_path)}
    runs = [
        subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={tmp_path / name}", *action, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for name, action in [("shot", [f"--screenshot={shot}"]), ("dom", ["--dump-dom"])]
    ]
    results = []
    try:
        for proc in runs:
            out, err = proc.communicate(timeout=90)
            results.append((proc.returncode, out, err))
    finally:
        for proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for code, _, err in results:
        assert code == 0, err.decode(errors="replace")[-2000:]

    # The DOM Chromium built: every chart mark and table the engine's numbers call for.
    dom = results[1][1].decode("utf-8")
    engine = bundled_engine()
    assessments = engine.assess_all(engine.default_params())
    doc = Document(dom)
    check_chart_marks(doc, assessments, BUNDLED_SAMPLES)
    check_trajectory_marks(doc, engine, assessments)
    ranking_rows = [
        e for e in doc.find("tr") if e.within("section", id="ranking") and e.within("tbody")
    ]
    assert len(ranking_rows) == len(assessments)
    assert len([e for e in doc.find("tr") if e.within("section", id="sources")]) > 10

    # The picture: the window's size, far from one colour, the ranking bars drawn.
    data = shot.read_bytes()
    assert data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (WIDTH, HEIGHT)
    image = decode_png(data)[:, :, :3]
    assert image.shape == (HEIGHT, WIDTH, 3)
    packed = image.astype(np.uint32)
    colours = np.unique((packed[:, :, 0] << 16) | (packed[:, :, 1] << 8) | packed[:, :, 2])
    assert len(colours) > 200, f"only {len(colours)} colours: a blank or broken page"
    white = np.all(image == 255, axis=2).mean()
    assert 0.3 < white < 0.98, f"{100 * white:.0f} % white"
    # Each ranking bar is ~20 px high and (composite / 100) x 600 px long, in its band colour.
    for band in {a.band for a in assessments}:
        painted = int(np.all(image == _hex_rgb(BAND_COLOURS[band]), axis=2).sum())
        bars = [a for a in assessments if a.band is band]
        expected = sum(600 * a.composite / 100 * 20 for a in bars)
        assert painted >= 0.8 * expected, (band, painted, expected)
