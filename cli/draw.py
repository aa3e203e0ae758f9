"""``digits draw``: draw digits with the mouse and watch the network read them live.

A thin Tk view over the library: a ``drawing.Sketch`` records the strokes (mirrored into an
off-screen Pillow image, never grabbed from the screen) and a ``recognize.Recognizer`` reads them.
tkinter is imported inside the command, so ``digits --help`` works without Tk or a display.

What the window shows is also exposed for tests and scripts: the title reads
``digits draw — 7 (98%)`` after each stroke (``digits draw`` when the canvas is empty), and the
hidden ``--state-file`` option rewrites a JSON file after every change.
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import sys
import threading
from pathlib import Path

import click

TITLE = "digits draw"
THROTTLE_MS = 100  # live predictions during a stroke: at most one per this many milliseconds
POLL_MS = 100  # how often the window looks at the training thread's progress
PREVIEW = 4  # the 28x28 input is shown at this magnification
BAR_WIDTH, BAR_HEIGHT = 150, 20
INK, PAPER, GUIDE, BAR, TOP_BAR = "black", "white", "#dddddd", "#7aa6d8", "#e07b24"


class DisplayError(click.ClickException):
    """No display or no Tk: one line saying what to set or install, exit status 2."""

    exit_code = 2



@click.command()
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model file to use (default: the most recently trained model; "
                   "the window can pick another).")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), default=None, hidden=True,
              help="Rewrite this JSON file with what the window shows after every change (for tests).")
@click.option("--train-size", type=click.IntRange(min=1), default=None, hidden=True,
              help="Train the offered default model on the first N images only (for tests).")
def draw(model, state_file, train_size):
    """Draw a digit and watch the network read it live (Esc clears, 0-9 saves it labelled)."""
    from tinygrad_digits.apps import training as app, recognize

    recognizer = recognize.Recognizer.load(model) if model is not None else None  # a bad file: exit 1
    tk, root = open_tk()
    if recognizer is None:
        try:
            recognizer = recognize.Recognizer.load(None)
        except FileNotFoundError:
            recognizer = None  # the window offers to train the default model
    if recognizer is not None:
        warm_up(recognizer)
    run = app.TrainRun(train_size=train_size) if train_size else None
    DrawWindow(tk, root, recognizer, state_file=state_file, train_run=run)
    root.mainloop()


def open_tk():
    """(tkinter, its root window), or DisplayError saying what to install or set."""
    if os.name == "posix" and sys.platform != "darwin" and not os.environ.get("DISPLAY"):
        raise DisplayError("no display: set DISPLAY or run under Xvfb (e.g. xvfb-run digits draw)")
    try:
        import tkinter
    except ImportError:
        raise DisplayError(
            "Tk is missing: install python3-tk (Debian/Ubuntu), python3-tkinter (Fedora) "
            "or a Python built with Tk"
        ) from None
    try:
        root = tkinter.Tk(className="digits")
    except tkinter.TclError as e:
        reason = (str(e).splitlines() or ["Tk failed"])[0]
        raise DisplayError(f"cannot open the display ({reason}): set DISPLAY or run under Xvfb") from None
    return tkinter, root


def warm_up(recognizer) -> None:
    """Load the kernels and the preprocessing once, so the first stroke gets an instant answer."""
    import numpy as np

    ink = np.zeros((28, 28), np.float32)
    ink[4:24, 13:15] = 1
    recognizer.predict_ink(ink)


class DrawWindow:
    """The window: canvas, buttons and the prediction panel. Logic lives in ``drawing`` and
    ``recognize``."""

    def __init__(self, tk, root, recognizer, state_file=None, train_run=None):
        from tinygrad_digits.apps import drawing, recognize

        self.tk, self.root, self.recognize, self.drawing = tk, root, recognize, drawing
        self.recognizer = recognizer
        self.sketch = drawing.Sketch()
        self.prediction = None
        self.pending = None  # the after() id of the throttled live prediction
        self.training = None  # the training thread's queue while it runs
        self.train_run = train_run
        self.state_file = Path(state_file) if state_file else None
        self.state = {"saved": None, "status": "", "training": None, "final": True}
        self._build()
        self._bind()
        self.show_model()
        self.root.wait_visibility(self.canvas)  # mapped: its place on the screen is known
        self.predict_drawing(final=True)  # the first real title says the window is ready

    # ---- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        tk, root = self.tk, self.root
        from tkinter import ttk

        root.title(f"{TITLE} — starting")
        root.resizable(False, False)
        root.protocol("WM_DELETE_WINDOW", root.destroy)
        left = tk.Frame(root, padx=10, pady=10)
        left.grid(row=0, column=0, sticky="n")
        size = self.sketch.width
        border = tk.Frame(left, bd=1, relief="solid")  # the canvas itself has no border, so event
        border.grid(row=0, column=0, columnspan=3)  # coordinates are drawing coordinates
        self.canvas = tk.Canvas(border, width=size, height=self.sketch.height, bg=PAPER, cursor="pencil",
                                highlightthickness=0, bd=0)
        self.canvas.pack()
        # A faint guide: digits drawn about this big give MNIST-like strokes with the default brush.
        self.canvas.create_rectangle(0.15 * size, 0.12 * size, 0.85 * size, 0.88 * size, outline=GUIDE,
                                     dash=(4, 4), tags="guide")
        buttons = [("Clear (Esc)", self.clear_canvas), ("Save… (S)", self.save_dialog),
                   ("Model… (M)", self.choose_model)]
        for i, (text, command) in enumerate(buttons):
            tk.Button(left, text=text, command=command, width=11).grid(row=1, column=i, pady=(8, 0))
        tk.Label(left, text="Draw with the mouse · 0-9 saves the drawing with that label",
                 fg="#555555").grid(row=2, column=0, columnspan=3, pady=(6, 0))

        right = tk.Frame(root, padx=10, pady=10)
        right.grid(row=0, column=1, sticky="n")
        self.digit = tk.Label(right, text=" ", font=("Helvetica", 72, "bold"), width=2)
        self.digit.grid(row=0, column=0)
        self.confidence = tk.Label(right, text="", font=("Helvetica", 12))
        self.confidence.grid(row=1, column=0)
        self.bars = tk.Canvas(right, width=BAR_WIDTH + 78, height=10 * BAR_HEIGHT + 4, highlightthickness=0)
        self.bars.grid(row=2, column=0, pady=(6, 6))
        self.bar_items = []
        for d in range(10):
            y = 2 + d * BAR_HEIGHT
            self.bars.create_text(8, y + BAR_HEIGHT / 2, text=str(d), font=("Helvetica", 11, "bold"))
            self.bars.create_rectangle(20, y + 3, 20 + BAR_WIDTH, y + BAR_HEIGHT - 3, outline="#cccccc")
            bar = self.bars.create_rectangle(20, y + 3, 20, y + BAR_HEIGHT - 3, fill=BAR, outline="")
            text = self.bars.create_text(BAR_WIDTH + 76, y + BAR_HEIGHT / 2, text="", anchor="e",
                                         font=("Helvetica", 10))
            self.bar_items.append((bar, text))
        tk.Label(right, text="what the network sees (28×28)", fg="#555555").grid(row=3, column=0)
        self.preview = tk.Label(right, bd=1, relief="solid")
        self.preview.grid(row=4, column=0, pady=(2, 0))
        self.model_label = tk.Label(right, text="", fg="#555555", wraplength=220)
        self.model_label.grid(row=5, column=0, pady=(6, 0))

        self.offer = tk.Frame(left)  # shown under the canvas while there is no model
        self.offer_text = tk.Label(self.offer, text="No trained model yet: train the default one "
                                   "(784-128relu-10, about a minute), or choose a model file.",
                                   wraplength=400)
        self.offer_text.grid(row=0, column=0)
        self.train_button = tk.Button(self.offer, text="Train the default model (T)",
                                      command=self.train_default)
        self.train_button.grid(row=1, column=0, pady=4)
        self.progress = ttk.Progressbar(self.offer, length=400, maximum=100, mode="determinate")
        self.progress.grid(row=2, column=0)
        self.status_bar = tk.Label(root, text="", anchor="w", fg="#333333", padx=10)
        self.status_bar.grid(row=1, column=0, columnspan=2, sticky="we", pady=(0, 6))

    def _bind(self) -> None:
        self.canvas.bind("<ButtonPress-1>", self.paint_start)
        self.canvas.bind("<B1-Motion>", self.paint)
        self.canvas.bind("<ButtonRelease-1>", self.paint_end)
        for key in ("<Escape>", "<Key-c>", "<Delete>", "<BackSpace>"):
            self.root.bind(key, lambda event: self.clear_canvas())
        self.root.bind("<Key-s>", lambda event: self.save_dialog())
        self.root.bind("<Key-m>", lambda event: self.choose_model())
        self.root.bind("<Key-t>", lambda event: self.train_default())
        for key in ("<Control-q>", "<Control-w>"):
            self.root.bind(key, lambda event: self.root.destroy())
        for d in range(10):
            self.root.bind(f"<Key-{d}>", lambda event, d=d: self.save(d))

    # ---- drawing --------------------------------------------------------------------------
    def paint_start(self, event) -> None:
        self._stroke(self.sketch.begin(event.x, event.y))

    def paint(self, event) -> None:
        self._stroke(self.sketch.extend(event.x, event.y))
        if self.pending is None:
            self.pending = self.root.after(THROTTLE_MS, lambda: self.predict_drawing(final=False))

    def paint_end(self, event) -> None:
        self._stroke(self.sketch.extend(event.x, event.y))
        self._stroke(self.sketch.end())
        self.predict_drawing(final=True)

    def _stroke(self, points) -> None:
        """Draw on screen the polyline that the sketch just drew into its image."""
        if not points:
            return
        r = self.sketch.brush / 2
        if len(points) == 1:
            (x, y), = points
            self.canvas.create_oval(x - r, y - r, x + r, y + r, fill=INK, outline="", tags="ink")
        else:
            flat = [c for point in points for c in point]
            self.canvas.create_line(*flat, width=self.sketch.brush, fill=INK, capstyle="round",
                                    joinstyle="round", tags="ink")

    def clear_canvas(self) -> None:
        self.sketch.clear()
        self.canvas.delete("ink")
        self.predict_drawing(final=True)

    # ---- predicting -----------------------------------------------------------------------
    def predict_drawing(self, final: bool = True) -> None:
        """Read the drawing (off-screen image -> input -> probabilities) and show the answer."""
        if self.pending is not None:
            self.root.after_cancel(self.pending)
            self.pending = None
        prediction = None
        if self.recognizer is not None and not self.sketch.empty:
            prediction = self.recognizer.predict_ink(self.sketch.ink())
        self.prediction = prediction
        self.show(prediction, final)

    def show(self, prediction, final: bool) -> None:
        if self.recognizer is None:
            digit, words = "?", "no model yet"
        elif self.sketch.empty:
            digit, words = " ", "draw a digit"
        elif prediction.probs is None:
            digit, words = "–", self.recognize.NO_DIGIT
        else:
            digit, words = str(prediction.label), f"{100 * prediction.confidence:.1f}% sure"
        self.digit.config(text=digit)
        self.confidence.config(text=words)
        probs = prediction.probs if prediction is not None else None
        for d, (bar, text) in enumerate(self.bar_items):
            p = 0.0 if probs is None else float(probs[d])
            y = 2 + d * BAR_HEIGHT
            self.bars.coords(bar, 20, y + 3, 20 + p * BAR_WIDTH, y + BAR_HEIGHT - 3)
            top = prediction is not None and d == prediction.label
            shown = "normal" if p * BAR_WIDTH >= 1 else "hidden"  # no sliver for a zero
            self.bars.itemconfig(bar, fill=TOP_BAR if top else BAR, state=shown)
            self.bars.itemconfig(text, text="" if probs is None else f"{100 * p:.1f}%")
        self._show_input(None if prediction is None else prediction.input)
        # Redraw and write the state before the title changes: whoever watches the title then
        # finds the window drawn and the state file current.
        self.root.update_idletasks()
        title = self.title() if final else self.root.title()
        self.state["final"] = final
        self.write_state(title)
        if final:
            self.root.title(title)

    def title(self) -> str:
        if self.training is not None:
            return f"{TITLE} — training {100 * (self.state['training'] or {}).get('fraction', 0):.0f}%"
        if self.recognizer is None:
            return f"{TITLE} — no model"
        if self.sketch.empty or self.prediction is None:
            return TITLE
        if self.prediction.probs is None:
            return f"{TITLE} — {self.recognize.NO_DIGIT}"
        return f"{TITLE} — {self.prediction.label} ({100 * self.prediction.confidence:.0f}%)"

    def _show_input(self, x) -> None:
        import numpy as np
        from PIL import Image

        x = np.zeros(784, np.float32) if x is None else x
        pixels = np.round(x.reshape(28, 28) * 255).astype(np.uint8)
        image = Image.fromarray(pixels).resize((28 * PREVIEW, 28 * PREVIEW), Image.Resampling.NEAREST)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        self.preview_image = self.tk.PhotoImage(data=base64.b64encode(buffer.getvalue()).decode("ascii"))
        self.preview.config(image=self.preview_image)

    # ---- saving and models ----------------------------------------------------------------
    def save_dialog(self) -> None:
        """Ask for the label (the prediction is offered) and save the drawing."""
        if self.sketch.empty:
            self.status("nothing to save: draw a digit first")
            return
        from tkinter import simpledialog

        guess = self.prediction.label if self.prediction is not None else None
        label = simpledialog.askinteger("Save drawing", "Which digit is this? (0-9)", parent=self.root,
                                        initialvalue=guess, minvalue=0, maxvalue=9)
        if label is not None:
            self.save(label)

    def save(self, label: int) -> None:
        """Save the drawing as a PNG labelled ``label`` in the drawings folder, then clear."""
        if self.sketch.empty:
            self.status("nothing to save: draw a digit first")
            return
        try:
            path = self.drawing.save_drawing(self.sketch, label)
        except (OSError, ValueError) as e:
            self.status(f"could not save: {e}", error=True)
            return
        self.state["saved"] = str(path)
        self.status(f"saved as {label}: {path}")
        self.clear_canvas()

    def choose_model(self) -> None:
        from tkinter import filedialog

        from tinygrad_digits import paths

        start = paths.models_dir() if paths.models_dir().is_dir() else Path.home()
        name = filedialog.askopenfilename(parent=self.root, title="Choose a model", initialdir=str(start),
                                          filetypes=[("tinygrad-digits models", "*.npz"), ("all files", "*")])
        if name:
            self.load_model(name)

    def load_model(self, path) -> None:
        try:
            recognizer = self.recognize.Recognizer.load(path)
        except (OSError, ValueError) as e:
            self.status((str(e).splitlines() or [type(e).__name__])[0], error=True)
            return
        self.use(recognizer)

    def use(self, recognizer) -> None:
        self.recognizer = recognizer
        warm_up(recognizer)
        self.show_model()
        self.status(f"model {recognizer.path}")
        self.predict_drawing(final=True)

    def show_model(self) -> None:
        if self.recognizer is None:
            self.model_label.config(text="")
            self.offer.grid(row=3, column=0, columnspan=3, pady=(12, 0))
        else:
            self.offer.grid_forget()
            model = self.recognizer
            self.model_label.config(text=f"model: {model.path.name} ({model.spec.describe()})")

    def train_default(self) -> None:
        """Train the default model in a worker thread; the window shows its progress."""
        if self.recognizer is not None or self.training is not None:
            return
        reports: queue.Queue = queue.Queue()
        run, recognize = self.train_run, self.recognize

        def work():
            try:
                path = recognize.train_default_model(lambda f, m: reports.put(("progress", f, m)), run=run)
                reports.put(("done", path))
            except BaseException as e:  # noqa: BLE001 - shown in the window, not lost in a thread
                reports.put(("error", (str(e).splitlines() or [type(e).__name__])[0]))

        self.training = reports
        self.train_button.config(state="disabled")
        self.offer_text.config(text="Training the default model…")
        threading.Thread(target=work, name="train-default-model", daemon=True).start()
        self.root.title(self.title())
        self.root.after(POLL_MS, self._poll_training)

    def _poll_training(self) -> None:
        outcome = None
        while True:
            try:
                report = self.training.get_nowait()
            except queue.Empty:
                break
            if report[0] == "progress":
                self.progress["value"] = 100 * report[1]
                self.offer_text.config(text=report[2])
                self.state["training"] = {"fraction": report[1], "message": report[2]}
            else:
                outcome = report
        if outcome is None:
            self.write_state(self.title())
            self.root.title(self.title())
            self.root.after(POLL_MS, self._poll_training)
            return
        self.training = None
        self.state["training"] = None
        if outcome[0] == "error":
            self.train_button.config(state="normal")
            self.offer_text.config(text="Training failed.")
            self.status(f"training failed: {outcome[1]}", error=True)
            self.root.title(self.title())
            return
        self.load_model(outcome[1])
        self.status(f"trained the default model: {outcome[1]}")

    # ---- status and state -----------------------------------------------------------------
    def status(self, message: str, error: bool = False) -> None:
        self.status_bar.config(text=message, fg="#b00020" if error else "#333333")
        self.state["status"] = message
        self.write_state()

    def write_state(self, title: str | None = None) -> None:
        """Rewrite the state file (atomically) with what the window shows (about to show: ``title``)."""
        if self.state_file is None:
            return
        p = self.prediction
        state = {
            **self.state,
            "title": title or self.root.title(),
            "model": str(self.recognizer.path) if self.recognizer is not None else None,
            "strokes": len(self.sketch.strokes),
            "prediction": p.to_json() if p is not None else None,
            "canvas": {"x": self.canvas.winfo_rootx(), "y": self.canvas.winfo_rooty(),
                       "width": self.sketch.width, "height": self.sketch.height},
        }
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.state_file)
