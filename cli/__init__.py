"""The ``digits`` command line: Click commands and the Tk drawing window (installed as
``tinygrad_digits.cli``). Commands parse options, call one library function and print."""
