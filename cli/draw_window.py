"""The window of ``digits draw``: drawing, live predictions, saving labelled drawings, choosing
or training a model. A thin Tk view: the logic lives in ``apps.drawing`` and ``apps.recognize``,
the layout in ``draw_layout``."""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import threading
from pathlib import Path

from .draw_layout import BAR, BAR_HEIGHT, BAR_WIDTH, INK, PREVIEW, TOP_BAR, build

TITLE = "digits draw"
THROTTLE_MS = 100  # live predictions during a stroke: at most one per this many milliseconds
POLL_MS = 100  # how often the window looks at the training thread's progress


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
        build(self, TITLE)
        self._bind()
        self.show_model()
        self.root.wait_visibility(self.canvas)  # mapped: its place on the screen is known
        self.predict_drawing(final=True)  # the first real title says the window is ready

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
