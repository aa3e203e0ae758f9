"""The models of ``digits draw``'s window: saving labelled drawings, switching and opening models,
and the background jobs, training an offered model or learning from the saved drawings, with
their progress. A mixin of ``draw_window.DrawWindow``; the logic lives in ``apps.learning``,
``apps.drawing`` and ``apps.recognize``."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

POLL_MS = 100  # how often the window looks at a background job's progress


def first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


class ModelsMixin:
    """Saving, models and background jobs of the drawing window (see the module doc)."""

    # ---- saving ---------------------------------------------------------------------------
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

    # ---- models ---------------------------------------------------------------------------
    def choose_model(self) -> None:
        from tkinter import filedialog

        from tinygrad_digits import paths

        start = paths.models_dir() if paths.models_dir().is_dir() else Path.home()
        name = filedialog.askopenfilename(parent=self.root, title="Choose a model", initialdir=str(start),
                                          filetypes=[("tinygrad-digits models", "*.npz"), ("all files", "*")])
        if name:
            self.load_model(name)

    def switch_model(self) -> None:
        """Switch to the next model in the models folder (M)."""
        current = self.recognizer.path if self.recognizer is not None else None
        following = self.learning.next_model(current)
        if following is None:
            self.status("no other model in the models folder: train one, or open a file (O)")
            return
        self.load_model(following)

    def load_model(self, path) -> None:
        try:
            recognizer = self.recognize.Recognizer.load(path)
        except (OSError, ValueError) as e:
            self.status(first_line(e), error=True)
            return
        self.use(recognizer)

    def use(self, recognizer) -> None:
        from .draw_window import warm_up

        self.recognizer = recognizer
        warm_up(recognizer)
        self.show_model()
        self.status(f"model {recognizer.path}")
        self.predict_drawing(final=True)

    def show_model(self) -> None:
        """Which model answers, always in view; the offers to train one while there is none."""
        if self.recognizer is None:
            self.model_label.config(text="no model answers yet")
            self.offer.grid(row=4, column=0, columnspan=3, pady=(12, 0))
        else:
            self.offer.grid_forget()
            model = self.recognizer
            self.model_label.config(text=f"answering: {model.path.name}\n({model.spec.describe()})")

    # ---- background jobs ------------------------------------------------------------------
    def train_offer(self, name: str | None = None) -> None:
        """Train an offered model (None: the quick MLP) in a worker thread, then use it."""
        if self.recognizer is not None or self.busy is not None:
            return
        run = self.learning.offer_run(name, self.train_size)
        text = dict(self.learning.offers()).get(name, name)

        def done(path) -> None:
            self.load_model(path)
            self.status(f"trained {text}: {path}")

        self.start_job("training", f"Training {text}…",
                       lambda report: self.recognize.train_default_model(report, run=run), done)

    def train_default(self) -> None:
        self.train_offer(None)

    def learn(self) -> None:
        """Fine-tune the answering model on every drawing saved so far (L), then switch to it."""
        if self.busy is not None:
            return
        if self.recognizer is None:
            self.status("no model to teach yet: train one first", error=True)
            return
        model, size = self.recognizer.path, self.train_size

        def done(outcome) -> None:
            self.load_model(outcome["path"])
            before, after = (f"{100 * outcome[k]:.0f}%" for k in ("before", "after"))
            text = f"learned {outcome['drawings']} saved drawings: {before} read right before, {after} after"
            self.learned.config(text=text)
            self.learned.grid(row=6, column=0, pady=(4, 0))
            self.state["learned"] = {**outcome, "path": str(outcome["path"])}
            self.status(f"{text}; now answering: {Path(outcome['path']).name}")

        self.start_job("learning", f"Learning from your drawings ({model.name})…",
                       lambda report: self.learning.learn_from_drawings(model, progress=report, train_size=size),
                       done)

    def start_job(self, kind: str, text: str, work, done) -> None:
        """Run ``work(report)`` in a worker thread, its progress in the window; ``done(result)``
        in the window's thread when it succeeds."""
        reports: queue.Queue = queue.Queue()

        def run():
            try:
                reports.put(("done", work(lambda f, m: reports.put(("progress", f, m)))))
            except BaseException as e:  # noqa: BLE001 - shown in the window, not lost in a thread
                reports.put(("error", first_line(e)))

        self.busy = {"kind": kind, "queue": reports, "done": done}
        self.state["training"] = {"kind": kind, "fraction": 0.0, "message": text}
        for button in (*self.offer_buttons, self.learn_button):
            button.config(state="disabled")
        self.job_text.config(text=text)
        self.progress["value"] = 0
        self.job.grid(row=5, column=0, columnspan=3, pady=(8, 0))
        threading.Thread(target=run, name=f"digits-draw-{kind}", daemon=True).start()
        self.root.title(self.title())
        self.root.after(POLL_MS, self._poll_job)

    def _poll_job(self) -> None:
        outcome = None
        while True:
            try:
                report = self.busy["queue"].get_nowait()
            except queue.Empty:
                break
            if report[0] == "progress":
                self.progress["value"] = 100 * report[1]
                self.job_text.config(text=report[2])
                self.state["training"] = {**self.state["training"], "fraction": report[1], "message": report[2]}
            else:
                outcome = report
        if outcome is None:
            self.write_state(self.title())
            self.root.title(self.title())
            self.root.after(POLL_MS, self._poll_job)
            return
        job, self.busy = self.busy, None
        self.state["training"] = None
        self.job.grid_forget()
        for button in (*self.offer_buttons, self.learn_button):
            button.config(state="normal")
        if outcome[0] == "error":
            self.status(f"{job['kind']} failed: {outcome[1]}", error=True)
            self.root.title(self.title())
            return
        job["done"](outcome[1])
