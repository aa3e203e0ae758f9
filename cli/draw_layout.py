"""The layout of ``digits draw``'s window: the canvas, its buttons, the prediction panel, the
offers to train a model, the progress of a model training or learning, and the status bar,
made as attributes of the window object."""

from __future__ import annotations

PREVIEW = 4  # the 28x28 input is shown at this magnification
BAR_WIDTH, BAR_HEIGHT = 150, 20
INK, PAPER, GUIDE, BAR, TOP_BAR = "black", "white", "#dddddd", "#7aa6d8", "#e07b24"


def build(self, title: str) -> None:
    """Make the window's widgets as attributes of ``self`` (a DrawWindow)."""
    tk, root = self.tk, self.root
    from tkinter import ttk

    root.title(f"{title} — starting")
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
    rows = [[("Clear (Esc)", self.clear_canvas), ("Save… (S)", self.save_dialog), ("Learn (L)", self.learn)],
            [("Next model (M)", self.switch_model), ("Open model… (O)", self.choose_model)]]
    self.learn_button = None
    for r, row in enumerate(rows, start=1):
        for i, (text, command) in enumerate(row):
            button = tk.Button(left, text=text, command=command, width=13)
            button.grid(row=r, column=i, pady=(6 if r == 1 else 2, 0))
            if command == self.learn:
                self.learn_button = button
    tk.Label(left, text="Draw with the mouse · 0-9 saves the drawing with that label\n"
                        "Learn: teach the model everything saved so far",
             fg="#555555").grid(row=3, column=0, columnspan=3, pady=(6, 0))

    right = tk.Frame(root, padx=10, pady=10)
    right.grid(row=0, column=1, sticky="n")
    self.digit = tk.Label(right, text=" ", font=("Helvetica", 60, "bold"), width=2)
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

    self.learned = tk.Label(right, text="", fg="#1b5e20", wraplength=220)  # shown once the model learned

    self.offer = tk.Frame(left)  # shown under the canvas while there is no model
    self.offer_text = tk.Label(self.offer, text="No trained model yet: train one, or open a model file.",
                               wraplength=400)
    self.offer_text.grid(row=0, column=0, columnspan=2)
    self.offer_buttons = []
    for i, (name, text) in enumerate(self.offers):
        key = " (T)" if name is None else ""
        button = tk.Button(self.offer, text=text + key, command=lambda name=name: self.train_offer(name))
        button.grid(row=1, column=i, pady=4, padx=2)
        self.offer_buttons.append(button)
    self.job = tk.Frame(left)  # shown while a model trains or learns
    self.job_text = tk.Label(self.job, text="", wraplength=400)
    self.job_text.grid(row=0, column=0)
    self.progress = ttk.Progressbar(self.job, length=400, maximum=100, mode="determinate")
    self.progress.grid(row=1, column=0)
    self.status_bar = tk.Label(root, text="", anchor="w", fg="#333333", padx=10)
    self.status_bar.grid(row=1, column=0, columnspan=2, sticky="we", pady=(0, 6))
