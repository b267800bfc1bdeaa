"""What the project knows of an input besides its type: the `InputMeta` each field of the model carries.

The model (`inputs`) attaches one to every field; the rest of the project reads them from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CliOption", "InputDoc", "InputMeta"]


@dataclass(frozen=True)
class CliOption:
    """How `ovh-byoi install` takes an input: its flags (the first long one names it in errors) and help.

    Choices and the value's type come from the field's type. `parse` reads repeated `'Name: value'` headers
    or `KEY=VALUE` pairs into a mapping; `reads_file` lets `@FILE` stand for the file's text.
    """

    flags: tuple[str, ...]
    help: str
    case_sensitive: bool = True
    parse: Literal["headers", "pairs"] | None = None
    reads_file: bool = False


@dataclass(frozen=True)
class InputDoc:
    """The input's row of the inputs table of docs/reference.md, in Markdown (a `|` would end the cell).

    `type`: the type as users write it. `notes`: what it is and its rules (`; **secret**` follows when the
    input is secret). `default`: when the field's own default does not say it well enough; else it reads
    "required", "none" or the default as JSON. `change`: what a change does when it is not just
    "**reinstalls**" or "update", as `reinstalls` says (the image is compared by checksum, else URL).
    """

    type: str
    notes: str
    default: str | None = None
    change: str | None = None


@dataclass(frozen=True)
class InputMeta:
    """What the project knows of one input besides its type.

    `fix`: what to write instead, shown with every problem of the field. `doc`: its row of the inputs
    table. `reinstalls`: a difference ends up on the disk, so it replaces the resource (the image itself is
    compared by checksum, else URL, and is not marked). `secret`: always secret in the state, whatever the
    program passed. `per_server`: a fleet's server may set it for itself (else it is the server's own key).
    `cli`: its option of `ovh-byoi install`, None when the command does not take it as an option.
    """

    fix: str
    doc: InputDoc
    reinstalls: bool = False
    secret: bool = False
    per_server: bool = True
    cli: CliOption | None = None
