"""``digits sweep``: train a grid of architectures x seeds, rank them, compare them digit by digit."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tinygrad_digits import registry

from . import options as opt
from .output import download_progress, emit_json
from .sweep_options import parse_configurations, parse_names, parse_seeds


def _check_outputs(out: Path, plot: Path | None) -> None:
    """Usage errors for a results folder or a plot that cannot be written, before anything runs."""
    from tinygrad_digits import outputs

    try:
        outputs.check_folder("--out", out)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    opt.check_paths({"--plot": plot})


@click.command()
@click.option(
    "--hidden",
    multiple=True,
    default=("128",),
    show_default=True,
    help="Configurations to compare: a comma list, with x between the layers of one "
    "(--hidden 64,128,256 --hidden 128x64).",
)
@click.option(
    "--conv",
    multiple=True,
    default=("none",),
    show_default=True,
    help="Convolution blocks to compare, as --hidden: a comma list, with x between the blocks of one "
    "(--conv none,32x64: filters per block, each a 3x3 ReLU convolution and a 2x2 max-pool; "
    "32x64+64: two convolutions in the second block).",
)
@opt.batch_norm_option
@click.option(
    "--act",
    multiple=True,
    default=("relu",),
    show_default=True,
    help=f"Activations to compare, a comma list ({', '.join(registry.ACTIVATIONS)}); each "
    "applies to every hidden layer.",
)
@click.option(
    "--seeds",
    default="0",
    show_default=True,
    help="Seeds (init, batch order, train/validation split), e.g. 0,1,2: every configuration "
    "trains once per seed.",
)
@opt.epochs_option
@opt.optimizer_options
@opt.alpha_option
@opt.init_option
@opt.regularization_options
@opt.train_size_option
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs trained at once, each in its own process with one BLAS thread.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Results directory: runs.jsonl (one line per finished run) and models/ "
    "(default: the per-user data directory's sweeps/).",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Train every run again, even those with results in the results directory.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ranking and per-digit error PNG (default: sweep.png in the results directory).",
)
@click.option("--no-plot", is_flag=True, help="Do not draw the plot.")
@opt.data_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (runs and ranking) on stdout."
)
def sweep(
    conv,
    batch_norm,
    hidden,
    act,
    seeds,
    epochs,
    batch_size,
    optimizer,
    lr,
    schedule,
    weight_decay,
    alpha,
    init,
    dropout,
    augment,
    label_smoothing,
    train_size,
    jobs,
    out,
    fresh,
    plot,
    no_plot,
    data,
    as_json,
):
    """Train every configuration x activation x seed, then rank them and show per-digit accuracy.

    Each run trains exactly as 'digits train' with the same options. Results are saved as
    runs finish, so an interrupted sweep keeps them and the next one skips them.
    """
    from tinygrad_digits.apps import training as app
    from tinygrad_digits import data as data_mod
    from tinygrad_digits.apps import sweep as sw

    configs = parse_configurations(hidden)
    convs = parse_configurations(conv, "--conv")
    acts = parse_names(act, registry.ACTIVATIONS, "--act")
    seed_list = parse_seeds(seeds)
    base = app.TrainRun(
        spec_args={"hidden": (128,), "activations": ("relu",), "alpha": alpha, "dropout": dropout,
                   **({"batch_norm": True} if batch_norm else {})},
        init=init,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        learning_rate=lr,
        schedule=schedule,
        weight_decay=weight_decay,
        train_size=train_size,
        augment=augment,
        label_smoothing=label_smoothing,
    )
    opt.check_train_size(train_size)
    for blocks in convs:
        for sizes in configs:  # the largest decides, but every one is cheap to check
            opt.check_memory({"hidden": sizes, "activations": (acts[0],) * len(sizes), "conv": blocks}, batch_size)
    runs = sw.grid(configs, acts, seed_list, base, convs)
    out = out or sw.default_dir()
    _check_outputs(out, None if no_plot else plot or Path(out) / "sweep.png")
    data_dir = data_mod.ensure_data(data, progress=download_progress())
    opt.announce_compile(as_json)
    count = {"done": 0, "cached": 0}
    width = len(str(len(runs)))

    def on_start(run):
        if not sys.stderr.isatty():
            return
        label = sw.config_label(run.spec_args["hidden"], sw.run_activation(run), run.spec_args.get("conv", ()))
        click.echo(f"training {label}, seed {run.seed} ...", err=True)

    def on_result(record, cached):
        count["done"] += 1
        count["cached"] += cached
        if cached:
            return
        stopped = f"  (stopped: {record['stopped']})" if record["stopped"] else ""
        click.echo(
            f"[{count['done']:>{width}}/{len(runs)}] {record['label']}, seed {record['seed']}: "
            f"test {100 * record['test_accuracy']:.2f}%  val {100 * record['val_accuracy']:.2f}%  "
            f"{record['seconds_per_epoch']:.2f} s/epoch{stopped}",
            err=as_json,
        )

    click.echo(
        f"sweep: {len(configs)} configurations x {len(acts)} activations x {len(seed_list)} seeds "
        + (f"x {len(convs)} conv configurations " if convs != [()] else "")
        + f"= {len(runs)} runs; results in {out}",
        err=True,
    )
    interrupted = False
    try:
        records = sw.run_sweep(
            runs, out, data_dir, jobs=jobs, resume=not fresh, on_start=on_start, on_result=on_result
        )
    except KeyboardInterrupt:
        interrupted = True
        wanted = {sw.run_key(run) for run in runs}
        records = [r for key, r in sw.load_records(out).items() if key in wanted]
    if count["cached"]:
        click.echo(f"({count['cached']} runs were already in {out} and were not trained again)", err=True)
    if not records:
        raise click.ClickException("no run finished")
    rows = sw.summarize(records)
    plot_path = None
    if not no_plot:
        title = f"sweep: {epochs} epochs, seeds {','.join(map(str, seed_list))}"
        plot_path = sw.plot_sweep(rows, plot or Path(out) / "sweep.png", title=title)
    lines = [sw.format_table(rows), "", sw.format_digit_matrix(rows)]
    if plot_path is not None:
        lines += ["", f"plot saved to {plot_path}"]
    click.echo("\n".join(lines), err=as_json)
    if as_json:
        emit_json(
            {
                "results": str(Path(out) / sw.RESULTS),
                "runs": records,
                "ranking": rows,
                "plot": str(plot_path) if plot_path else None,
                "complete": not interrupted,
            }
        )
    if interrupted:
        click.echo(
            f"interrupted: {len(records)} of {len(runs)} runs finished; run the same command "
            "again to train the rest",
            err=True,
        )
        sys.exit(130)
