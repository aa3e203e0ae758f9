"""The ``digits draw`` window on a real X server: Xvfb, real pointer events from xdotool.

Xvfb and xdotool come from the system (``.ci/run`` installs them); where they are missing the
window tests skip, saying which and how to install them. The window is found by its title,
digits are drawn with the pointer (press, moves, release), and the test reads the answer from
the title (``digits draw — 7 (98%)``), which the window sets after each stroke once it has
redrawn itself. A screenshot of the window (cropped from Xvfb's framebuffer, an XWD file) is
saved as ``digits-draw.png`` in the test's tmp_path; everything the window writes (drawings,
models) goes to the test's private per-user directories there too.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from strokes import DIGITS

from tinygrad_digits.cli.main import main

TOOLS = {"Xvfb": "xvfb", "xdotool": "xdotool"}  # executable: Debian package
SCREEN = (800, 600)
WAIT = 60  # seconds: the bound on every wait for the window (they end as soon as it answers)


# ---- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def x_tools():
    """Xvfb and xdotool on PATH (``.ci/run`` installs them); the window tests skip without them."""
    missing = [exe for exe in TOOLS if shutil.which(exe) is None]
    if missing:
        packages = " ".join(TOOLS[exe] for exe in missing)
        pytest.skip(f"{', '.join(missing)} not found: the window tests need them "
                    f"(on Debian/Ubuntu, as root: apt-get install -y {packages})")


@pytest.fixture(scope="module")
def xvfb(x_tools, tmp_path_factory):
    """A private X server on a free display (Xvfb -displayfd), its framebuffer in an XWD file."""
    folder = tmp_path_factory.mktemp("xvfb")
    read_end, write_end = os.pipe()
    log = open(folder / "xvfb.log", "wb")
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
         "-nolisten", "tcp", "-fbdir", str(folder)],
        pass_fds=(write_end,), stdout=log, stderr=log,
    )
    os.close(write_end)
    try:
        number = read_line(read_end, WAIT)
        if not number.isdigit():
            pytest.fail(f"Xvfb did not start: {(folder / 'xvfb.log').read_text(errors='replace')[-500:]}")
        yield {"DISPLAY": f":{number}", "framebuffer": folder / "Xvfb_screen0"}
    finally:
        os.close(read_end)
        stop(server)
        log.close()


def read_line(fd: int, timeout: float) -> str:
    """One line from a pipe, waiting at most ``timeout`` seconds in all (select, no sleeps)."""
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        chunk = os.read(fd, 64) if ready else b""
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Window:
    """A ``digits draw`` process on the Xvfb display, driven with xdotool."""

    def __init__(self, xvfb, tmp_path, *args):
        self.env = {**os.environ, "DISPLAY": xvfb["DISPLAY"], "LC_ALL": "C.UTF-8"}
        self.framebuffer = xvfb["framebuffer"]
        self.state_file = tmp_path / "state.json"
        self.log = open(tmp_path / "draw.log", "wb")
        script = Path(sys.executable).with_name("digits")
        command = [str(script)] if script.exists() else [sys.executable, "-c",
                                                         "from tinygrad_digits.cli.main import main; main()"]
        self.process = subprocess.Popen([*command, "draw", "--state-file", str(self.state_file), *args],
                                        env=self.env, stdout=self.log, stderr=self.log)
        self.id = None

    def xdotool(self, *args, timeout: float = WAIT) -> str:
        try:
            done = subprocess.run(["xdotool", *map(str, args)], env=self.env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"xdotool {args[0]} gave no answer in {timeout} s; window title {self.title()!r}; "
                        f"app log: {self.app_log()}")
        return done.stdout.strip()

    def wait_for_title(self, pattern: str) -> str:
        """Block (xdotool search --sync, bounded) until the window's title matches; returns it."""
        found = self.xdotool("search", "--sync", "--onlyvisible", "--name", pattern).split()
        if self.id is None:
            self.id = found[0]
        return self.title()

    def title(self) -> str:
        if self.id is None:
            return ""
        done = subprocess.run(["xdotool", "getwindowname", self.id], env=self.env, capture_output=True,
                              text=True, timeout=10)
        return done.stdout.strip()

    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    def draw(self, points) -> None:
        """Press, move through ``points`` (canvas pixels) and release: one stroke of real pointer
        events, paced like a hand (~100 events a second) so that Tk sees each move."""
        canvas = self.state()["canvas"]
        screen = [(round(canvas["x"] + x), round(canvas["y"] + y)) for x, y in points]
        args = ["mousemove", *screen[0], "mousedown", "1"]
        for x, y in screen[1:]:
            args += ["sleep", "0.01", "mousemove", x, y]
        self.xdotool(*args, "mouseup", "1")

    def key(self, name: str) -> None:
        self.xdotool("windowfocus", "--sync", self.id, "key", "--clearmodifiers", name)

    def clear(self) -> None:
        self.key("Escape")
        assert self.wait_for_title("^digits draw$") == "digits draw"

    def screenshot(self, path: Path) -> Image.Image:
        """The window as the X server shows it (cropped from Xvfb's framebuffer)."""
        shell = self.xdotool("getwindowgeometry", "--shell", self.id)
        geometry = dict(line.split("=") for line in shell.split())
        x, y, w, h = (int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        image = read_xwd(self.framebuffer).crop((x, y, x + w, y + h))
        image.save(path)
        return image

    def app_log(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-1000:]

    def close(self) -> None:
        stop(self.process)
        self.log.close()


@pytest.fixture
def window_factory(xvfb, tmp_path):
    windows = []

    def start(*args) -> Window:
        window = Window(xvfb, tmp_path, *args)
        windows.append(window)
        return window

    yield start
    for window in windows:
        window.close()


def read_xwd(path: Path) -> Image.Image:
    """An XWD file (X Window Dump, as Xvfb -fbdir keeps its screen) of a 24/32-bit TrueColor
    ZPixmap, as an RGB image."""
    data = Path(path).read_bytes()
    header = struct.unpack(">25I", data[:100])  # XWD headers are big-endian
    (header_size, version, pixmap_format, _, width, height, _, byte_order, _, _, _, bits_per_pixel,
     bytes_per_line, _, red_mask, green_mask, blue_mask, _, _, colours) = header[:20]
    assert version == 7 and pixmap_format == 2 and bits_per_pixel == 32, header[:12]
    start = header_size + 12 * colours
    rows = np.frombuffer(data, np.uint8, height * bytes_per_line, start).reshape(height, bytes_per_line)
    pixels = rows[:, : 4 * width].copy().view("<u4" if byte_order == 0 else ">u4")
    shifts = [(mask & -mask).bit_length() - 1 for mask in (red_mask, green_mask, blue_mask)]
    planes = [(pixels & mask) >> shift for mask, shift in zip((red_mask, green_mask, blue_mask), shifts)]
    return Image.fromarray(np.dstack(planes).astype(np.uint8), "RGB")


TITLE = re.compile(r"^digits draw — (\d) \((\d+)%\)$")
# xdotool's regular expressions do not match the em dash: ASCII patterns for it
PREDICTED = r"^digits draw [^ ]+ [0-9] [(][0-9]+%[)]$"


# ---- tests ---------------------------------------------------------------------------------
def test_window_reads_digits_drawn_with_the_pointer(window_factory, model_path, private_home, tmp_path):
    window = window_factory("--model", model_path)
    assert window.wait_for_title("^digits draw$") == "digits draw"
    assert window.state()["model"] == str(model_path)
    read = {}
    for digit, points in DIGITS.items():
        window.clear()
        window.draw(points)
        title = window.wait_for_title(PREDICTED)
        match = TITLE.match(title)
        assert match, title
        read[digit] = int(match[1])
        state = window.state()
        assert state["final"] and state["strokes"] == 1
        assert state["prediction"]["label"] == read[digit]
        assert len(state["prediction"]["probabilities"]) == 10
    assert read == {d: d for d in DIGITS}, f"the window read {read}"

    window.xdotool("mousemove", SCREEN[0] - 1, SCREEN[1] - 1)  # the pointer out of the picture
    shot = window.screenshot(tmp_path / "digits-draw.png")
    pixels = np.asarray(shot.convert("L"))
    canvas = window.state()["canvas"]
    assert shot.width > canvas["width"] and shot.height > canvas["height"]
    assert (pixels < 64).any() and (pixels > 192).any()  # the black 7 on white paper

    drawings = private_home / "xdg-data" / "tinygrad-digits" / "drawings"
    window.key("s")  # Save...: the dialog offers the prediction, Return accepts it
    dialog = window.xdotool("search", "--sync", "--onlyvisible", "--name", "^Save drawing$").split()[0]
    window.xdotool("windowfocus", "--sync", dialog, "key", "Return")
    assert window.wait_for_title("^digits draw$") == "digits draw"  # saved, and the canvas cleared
    saved = Path(window.state()["saved"])
    assert saved.parent == drawings / "7"
    with Image.open(saved) as image:
        assert image.info["label"] == "7" and image.size == (canvas["width"], canvas["height"])

    window.draw(DIGITS[1])
    window.wait_for_title(PREDICTED)
    window.key("4")  # a digit key saves the drawing with that label, whatever the network read
    assert window.wait_for_title("^digits draw$") == "digits draw"
    assert Path(window.state()["saved"]).parent == drawings / "4"
    assert "Traceback" not in window.app_log() and "Exception" not in window.app_log()


def test_window_without_a_model_trains_the_default_one(window_factory, private_home):
    window = window_factory("--train-size", "1000")
    assert window.wait_for_title(r"^digits draw [^ ]+ no model$")
    assert window.state()["model"] is None
    window.key("t")
    assert window.wait_for_title("^digits draw$") == "digits draw"  # trained, loaded, canvas empty
    model = Path(window.state()["model"])
    assert model.parent == private_home / "xdg-data" / "tinygrad-digits" / "models" and model.is_file()
    window.clear()
    window.draw(DIGITS[1])
    assert TITLE.match(window.wait_for_title(PREDICTED))
    assert "Traceback" not in window.app_log() and "Exception" not in window.app_log()


def test_window_learns_the_corrections_it_was_given(window_factory, model_path, private_home):
    window = window_factory("--model", model_path, "--train-size", "2000")
    assert window.wait_for_title("^digits draw$") == "digits draw"
    for _ in range(3):  # a 1 written with a long flag, as many write it: the model reads a 7
        window.draw(DIGITS[7])
        assert TITLE.match(window.wait_for_title(PREDICTED))[1] == "7"
        window.key("1")  # the correction: saved as a 1
        assert window.wait_for_title("^digits draw$") == "digits draw"
    window.key("l")
    window.wait_for_title("^digits draw [^ ]+ learning [0-9]+%$")
    assert window.wait_for_title("^digits draw$") == "digits draw"  # learned, the new model loaded
    state = window.state()
    learned = state["learned"]
    assert learned["drawings"] == 3 and learned["before"] == 0 and learned["after"] == 1
    tuned = private_home / "xdg-data" / "tinygrad-digits" / "models" / "recognize-model-tuned.npz"
    assert state["model"] == learned["path"] == str(tuned) and tuned.is_file()
    window.draw(DIGITS[7])
    assert TITLE.match(window.wait_for_title(PREDICTED))[1] == "1"  # the answer changed
    assert "Traceback" not in window.app_log() and "Exception" not in window.app_log()


def test_m_switches_between_the_saved_models(window_factory, model_path, private_home):
    models = private_home / "xdg-data" / "tinygrad-digits" / "models"
    models.mkdir(parents=True)
    for name in ("a.npz", "b.npz"):
        shutil.copy(model_path, models / name)
    window = window_factory()
    assert window.wait_for_title("^digits draw$") == "digits draw"
    first = Path(window.state()["model"])
    window.key("m")
    window.draw(DIGITS[1])  # events come in order: once this is read, the switch is done
    assert TITLE.match(window.wait_for_title(PREDICTED))
    second = Path(window.state()["model"])
    assert {first.name, second.name} == {"a.npz", "b.npz"}
    assert window.state()["status"] == f"model {second}"
    window.clear()
    window.key("m")
    window.draw(DIGITS[1])
    assert TITLE.match(window.wait_for_title(PREDICTED))
    assert Path(window.state()["model"]) == first


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_no_display_is_one_line_and_exit_2(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    result = run("draw")
    assert result.exit_code == 2
    expected = "Error: no display: set DISPLAY or run under Xvfb (e.g. xvfb-run digits draw)"
    assert result.stderr.strip() == expected


def test_missing_tk_is_one_line_and_exit_2(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":12345")
    monkeypatch.setitem(sys.modules, "tkinter", None)  # import tkinter now raises ImportError
    result = run("draw")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "Tk is missing: install python3-tk" in result.stderr


def test_unreachable_display_is_one_line_and_exit_2(monkeypatch):
    pytest.importorskip("tkinter")
    monkeypatch.setenv("DISPLAY", ":12345")
    result = run("draw")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "set DISPLAY or run under Xvfb" in result.stderr


def test_a_bad_model_file_fails_before_any_window(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    result = run("draw", "--model", bad)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("Error: ") and str(bad) in result.stderr
