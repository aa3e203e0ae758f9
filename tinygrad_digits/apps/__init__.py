"""Applications built on the framework: training runs from the CLI's options (``training``), the
Keras twin and ``digits compare`` (``keras_twin``, ``compare``), sweeps, reading digits from images
and drawings (``preprocess``, ``recognize``, ``drawing``), plots and ``digits bench``'s plan.

The framework itself (autodiff, ops, layers, optimizers, the training loop, model files, data) is
the package above; nothing there imports from here.
"""
