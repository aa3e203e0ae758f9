"""The ``digits`` command group. Each command parses its options, calls the library, prints.

Each command lives in a module of its own, which imports only click (and the registry of
names) at module level; the library, Numba, matplotlib and TensorFlow are imported inside the
commands, so ``digits --help`` stays fast. Library errors (ValueError, OSError) become one
``Error:`` line and exit status 1; Click's usage errors exit with 2.
"""

from __future__ import annotations

import sys

import click

from .bench import bench
from .compare import compare
from .draw import draw
from .evaluate import evaluate
from .predict import predict
from .sweep import sweep
from .train import train


class DigitsGroup(click.Group):
    """Every error is one ``Error:`` line on stderr: library errors (exit 1) and usage errors,
    which Click would print with the usage text (exit 2)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
            click.echo(f"Error: {e.format_message()}{hint}", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ValueError, OSError) as e:
            message = str(e).strip().splitlines()
            raise click.ClickException(message[0] if message else type(e).__name__) from None


@click.group(cls=DigitsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tinygrad-digits", prog_name="digits")
def main():
    """tinygrad-digits: train, test and play with a from-scratch MLP on MNIST."""


for command in (train, evaluate, predict, draw, compare, sweep, bench):
    main.add_command(command)
