"""The window of ``digits draw``: drawing and live predictions. A thin Tk view: the logic lives
in ``apps.drawing`` and ``apps.recognize``, the layout in ``draw_layout``, and saving, models
and the background jobs (training, learning) in ``draw_models``."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

from .draw_layout import BAR, BAR_HEIGHT, BAR_WIDTH, INK, PREVIEW, TOP_BAR, build
from .draw_models import ModelsMixin

TITLE = "digits draw"
THROTTLE_MS = 100  # live predictions during a stroke: at most one per this many milliseconds


def warm_up(recognizer) -> None:
    """Load the kernels and the preprocessing once, so the first stroke gets an instant answer."""
    import numpy as np

    ink = np.zeros((28, 28), np.float32)
    ink[4:24, 13:15] = 1
    recognizer.predict_ink(ink)


class DrawWindow(ModelsMixin):
    """The window: canvas, buttons and the prediction panel. Logic lives in ``drawing``,
    ``recognize`` and ``learning``. ``train_size``: train offered models, and learn, on the first
    N MNIST images only (quick runs)."""

    def __init__(self, tk, root, recognizer, state_file=None, train_size=None):
        from tinygrad_digits.apps import drawing, learning, recognize

        self.tk, self.root, self.recognize, self.drawing, self.learning = tk, root, recognize, drawing, learning
        self.recognizer = recognizer
        self.sketch = drawing.Sketch()
        self.prediction = None
        self.pending = None  # the after() id of the throttled live prediction
        self.busy = None  # the background job (training or learning) while it runs
        self.train_size = train_size
        self.offers = learning.offers()
        self.state_file = Path(state_file) if state_file else None
        self.state = {"saved": None, "status": "", "training": None, "learned": None, "final": True}
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
        self.root.bind("<Key-m>", lambda event: self.switch_model())
        self.root.bind("<Key-o>", lambda event: self.choose_model())
        self.root.bind("<Key-l>", lambda event: self.learn())
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
        if self.busy is not None:
            job = self.state["training"] or {}
            return f"{TITLE} — {self.busy['kind']} {100 * job.get('fraction', 0):.0f}%"
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
