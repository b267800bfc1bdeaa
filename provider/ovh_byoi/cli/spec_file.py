"""The inputs `ovh-byoi install` reads from files: a YAML spec (`--spec`), and `@FILE` values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .app import BadInput

__all__ = ["file_or_value", "load_spec", "read_text"]


def read_text(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{option}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{option}: {path} is not UTF-8 text (byte {exc.start} is not): it looks like a binary file.\n"
            "Fix: give a text file (a #cloud-config document, a #! script, an OpenSSH key line, YAML); "
            "cloud-init can download binary files itself at first boot (write_files with a URL)."
        ) from None


def file_or_value(value: str | None, option: str) -> str | None:
    """`@path` reads the file (as curl does), anything else is the value itself."""
    if value is None or not value.startswith("@"):
        return value
    return read_text(Path(value[1:]).expanduser(), option)


def load_spec(path: Path) -> dict[str, Any]:
    import yaml

    text = read_text(path, "--spec")
    try:
        loaded = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # YAML's own message quotes the lines around the error, and the file holds secrets (headers, user
        # data): say where and what only.
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise BadInput(
            f"--spec: {path} is not valid YAML{where}: {exc.problem or exc.context or 'syntax error'}"
        ) from None
    except yaml.YAMLError:
        raise BadInput(f"--spec: {path} is not valid YAML") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise BadInput(
            f"--spec: {path} must hold a mapping of ByoiInstallation inputs (image_url: ..., image_type: ...)"
        )
    return {str(key): value for key, value in loaded.items()}
