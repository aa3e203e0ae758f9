"""Our trainer as a ``digits bench`` worker: tinygrad_digits.train, on the path it takes by itself
(the fused kernel warm-up found faster here), or forced onto the one-thread or the parallel fused
kernel, or the general path.

``python benchmarks/ours_runner.py --serve [--threads one|parallel | --general]`` (see bench_common.py
for the commands). The
epoch time is the ``seconds`` of the training history (no validation set, so it is the steps
alone); the worker holds ``train`` between epochs inside its ``on_epoch`` callback, so one
``train`` call runs the whole schedule as ``digits train`` would.
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_common import Channel, answer, blas_info, load_data, median_seconds, serve


class Worker:
    def __init__(self, channel: Channel, general: bool, threads: str):
        from tinygrad_digits import fastpath as F
        from tinygrad_digits import model as M
        from tinygrad_digits import optimizers as O
        from tinygrad_digits import train as T
        self.M, self.O, self.T, self.F = M, O, T, F
        F.USE_FUSED = not general
        F.USE_PARALLEL = {"auto": None, "one": False, "parallel": True}[threads]
        # the parent warmed the kernels up before starting any worker (bench_run.warm_kernels): they
        # load as they are first called, and the thread choice is the one warm-up recorded then
        self.channel = channel
        self.pending = None

    def setup(self, data, hidden, batch_size, epochs, seed=0, learning_rate=0.002, **_):
        M, O, T = self.M, self.O, self.T
        self.data = load_data(data)
        x = self.data["x_train"]
        self.spec = M.ModelSpec(hidden=tuple(hidden), activations=("relu",))
        self.params = M.init_params(self.spec, np.random.default_rng(seed))
        self.config = T.TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed)
        self.optimizer = O.OptimizerConfig("adam", learning_rate, "cosine",
                                           total_steps=epochs * T.steps_per_epoch(len(x), batch_size))
        self.sizes = [x.shape[1], *hidden, 10]
        self.batch_size = batch_size
        self.training = False
        return {"ready": True}

    def epoch(self):
        """Start ``train``; later epochs are released from inside its on_epoch callback."""
        assert not self.training, "an epoch command reached the worker outside of train"
        self.training = True
        x, y = self.data["x_train"], self.data["y_train"]
        empty = x[:0]
        self.T.train(self.spec, self.params, x, y, empty, y[:0], self.config, self.optimizer,
                     on_epoch=self._after_epoch)
        self.training = False
        return self.pending

    def _after_epoch(self, record, params):
        # the training steps' seconds where the history has them apart from validation (there is none here)
        reply = {"seconds": record.get("train_seconds", record["seconds"]), "loss": record["train_loss"]}
        if record["epoch"] == self.config.epochs:
            self.pending = reply  # train returns next; epoch() sends it
            return
        self.channel.send(reply)
        while True:  # serve other commands until the next epoch is asked for
            command = self.channel.receive()
            if command["cmd"] == "epoch":
                return
            answer(self.channel, self, command)

    def info(self):
        import numba

        from tinygrad_digits import warmup
        from tinygrad_digits.kernels import _vectors

        return {"numba": numba.__version__, "blas": blas_info(), "fused": self.F.USE_FUSED,
                "threads": numba.get_num_threads(), "parallel_chosen": warmup.thread_choice(),
                "widened": _vectors.widened()}

    def floor(self, first_inputs=None):
        """The GEMM floor; with ``first_inputs``, the work floor (the first layer that wide)."""
        from gemm_floor import numba_floor

        sizes = [first_inputs or self.sizes[0], *self.sizes[1:]]
        return {"seconds": numba_floor(sizes, len(self.data["x_train"]), self.batch_size)}

    def inference(self):
        from tinygrad_digits.kernels import fused

        M, O, F = self.M, self.O, self.F
        raw = self.data["images"]
        one = raw[0]
        x1 = M.normalize(self.spec, raw[:1])
        # the fused forward kernel on flat params: one call, no Python per layer
        flat = F.FusedSteps(M.dense_chain(self.spec), self.spec.alpha, self.params, x1, np.zeros(1, np.int64), 1,
                             O.OptimizerConfig("sgd"))
        predictor = M.Predictor(self.spec, self.params)
        return {
            "single_kernel_us": 1e6 * median_seconds(
                lambda: fused.mlp_forward(flat.flat, flat.layout, flat.alpha, x1, flat.outs), 2000),
            # the forward pass of model.Predictor (digits predict, digits draw): blank pixels skipped, no BLAS
            "single_sparse_kernel_us": 1e6 * median_seconds(
                lambda: fused.mlp_forward_sparse(predictor.flat, predictor.layout, flat.alpha, x1,
                                                 predictor.background, predictor.w_sums, predictor.outs), 2000),
            "single_predictor_us": 1e6 * median_seconds(lambda: predictor(one), 2000),
            "single_us": 1e6 * median_seconds(lambda: M.forward(self.spec, self.params, x1), 2000),
            "single_predict_us": 1e6 * median_seconds(lambda: M.predict_proba(self.spec, self.params, one), 2000),
            "batch10k_ms": 1e3 * median_seconds(lambda: M.predict_proba(self.spec, self.params, raw), 3),
        }

    def evaluate(self):
        x = self.data["x_test"]
        logits = self.M.forward(self.spec, self.params, x)
        return {"test_accuracy": float(np.mean(logits.argmax(axis=1) == self.data["y_test"]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="run as a digits bench worker")
    parser.add_argument("--general", action="store_true", help="force the general (unfused) path")
    parser.add_argument("--threads", choices=("auto", "one", "parallel"), default="auto",
                        help="the fused kernel: as warm-up chose it here, or forced")
    args = parser.parse_args()
    if args.serve:
        channel = Channel()
        serve(channel, Worker(channel, args.general, args.threads))
        return
    parser.error("use digits bench, or --serve")


if __name__ == "__main__":
    main()
