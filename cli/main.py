"""The ``digits`` command group. Each command parses its options, calls the library, prints.

Each command lives in a module of its own, which imports only click (and the registry of
names) at module level; the library, Numba, matplotlib and TensorFlow are imported inside the
commands, so ``digits --help`` stays fast. Library errors (ValueError, OSError) and a lack of
memory become one ``Error:`` line and exit status 1; Click's usage errors exit with 2; an
interrupt that a command does not handle itself exits with 130, and a reader that closes our
output early (``digits evaluate | head -1``) ends the command quietly with 141, as SIGPIPE would.
"""

from __future__ import annotations

import os
import sys

import click

from .augment import augment
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
            click.echo("Error: interrupted", err=True)
            sys.exit(130)
        except _ClosedPipe:
            _silence_stdout()
            sys.exit(141)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _ClosedPipe() from None  # not an OSError: Click would exit 1
        except KeyboardInterrupt:
            raise click.Abort() from None
        except MemoryError:
            raise click.ClickException(
                f"not enough memory to finish 'digits {ctx.invoked_subcommand}': free some memory, or ask "
                "for less (a smaller --hidden, --batch-size or --train-size)"
            ) from None
        except (ValueError, OSError) as e:
            message = str(e).strip().splitlines()
            raise click.ClickException(message[0] if message else type(e).__name__) from None


class _ClosedPipe(Exception):
    """The reader of stdout went away (``| head``)."""


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail once more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test runner's stdout)
        pass


@click.group(cls=DigitsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tinygrad-digits", prog_name="digits")
def main():
    """tinygrad-digits: train, test and play with from-scratch MLPs and convnets on MNIST."""


for command in (train, evaluate, predict, draw, augment, compare, sweep, bench):
    main.add_command(command)
