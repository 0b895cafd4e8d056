"""Command-line helpers shared by the suite's scripts: names and numbers read from flags, and the one-line
usage error every script ends with on bad input."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterable
from typing import NoReturn

from envs.render import install_hint, renderers


def parse_names(parser: argparse.ArgumentParser, flag: str, value: str, valid: Iterable[str]) -> list[str]:
    """A comma-separated list of names for a script's ``flag``; an unknown one ends the script with one
    line (argparse's usage error, exit 2) that lists the valid names, before anything runs."""
    valid = list(valid)
    names = [name for name in value.split(",") if name]
    for name in names or [value]:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            usage_error(parser, f"{flag}: unknown name '{name}'{hint}; choose from: {', '.join(valid)}")
    return names


def usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """End a script with one line on stderr, exit code 2, as the runner does for a bad config."""
    parser.exit(2, f"error: {message}\n")


def parse_backends(parser: argparse.ArgumentParser, value: str | None) -> list[str]:
    """A script's ``--backends``: the named ones, each installed (else one line with the install
    command); not given: every backend installed here, with a note for each one skipped."""
    if value is None:
        backends = [b for b in renderers() if install_hint(b) is None]
        for missing in sorted(set(renderers()) - set(backends)):
            print(f"note: skipping {missing}: {install_hint(missing)}", file=sys.stderr)
        return backends
    backends = parse_names(parser, "--backends", value, renderers())
    for backend in backends:
        if (hint := install_hint(backend)) is not None:
            usage_error(parser, hint)
    return backends


def positive_ints(parser: argparse.ArgumentParser, flag: str, value: str) -> list[int]:
    """A comma-separated list of positive integers for a script's ``flag`` (e.g. ``--num-envs 16,64``)."""
    try:
        numbers = [int(n) for n in value.split(",")]
    except ValueError:
        numbers = []
    if not numbers or min(numbers) < 1:
        usage_error(parser, f"{flag} '{value}': give positive integers separated by commas, e.g. 16,64")
    return numbers
