"""The command's options for the resource's inputs, read from each input's declaration (`spec.INPUTS`)."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import click

from ..spec import INPUTS, ByoiInstallationArgs
from .app import parse_headers, parse_pairs

__all__ = ["INSTALL_OPTION_NAMES", "input_choices", "input_options"]

_PARSERS = {"headers": (parse_headers, "'NAME: VALUE'"), "pairs": (parse_pairs, "KEY=VALUE")}


def _value_type(name: str) -> Any:
    """The input's type without None, `Annotated` and its rules: `Literal[...]`, `int`, `str`, ..."""
    annotation = ByoiInstallationArgs.model_fields[name].annotation
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
        else:
            return annotation


def input_choices(name: str) -> tuple[str, ...]:
    """The values an input takes, for a `click.Choice`."""
    value_type = _value_type(name)
    if get_origin(value_type) is not Literal:
        raise TypeError(f"{name} takes any value of its type, not one of a few")
    return tuple(str(choice) for choice in get_args(value_type))


def _click_type(name: str, case_sensitive: bool) -> Any:
    value_type = _value_type(name)
    if get_origin(value_type) is Literal:
        return click.Choice(input_choices(name), case_sensitive=case_sensitive)
    return value_type if value_type in (int, str) else None


def _long_flag(flags: tuple[str, ...]) -> str:
    return next(flag for flag in flags if flag.startswith("--"))


def input_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Adds an option for every input that declares one, each passed under the input's own name."""
    declared = [(name, meta.cli) for name, meta in INPUTS.items() if meta.cli is not None]
    # Applied last to first, so that `--help` lists them in the model's order.
    for name, cli in reversed(declared):
        settings: dict[str, Any] = {"help": cli.help}
        if cli.parse is not None:
            callback, metavar = _PARSERS[cli.parse]
            settings.update(multiple=True, callback=callback, metavar=metavar)
        else:
            settings["type"] = _click_type(name, cli.case_sensitive)
        function = click.option(*cli.flags, name, **settings)(function)
    return function


# Every input of ByoiInstallation the command takes, and how the user writes it (in problems).
INSTALL_OPTION_NAMES: dict[str, str] = {
    "service_name": "SERVICE",
    **{name: _long_flag(meta.cli.flags) for name, meta in INPUTS.items() if meta.cli is not None},
}
