"""What a user declares for one BYOI installation, and the body OVH's reinstall call takes.

The names the rest of the project imports, from the modules of this package that hold them:

- `inputs`: `ByoiInstallationArgs`, the user-facing inputs (snake_case), each declared once with what the
  project knows of it, and the tables read from there (`INSTALL_FIELDS`, `FIXES`, `SECRET_INPUTS`, ...);
  `ByoiInstallationState` adds what the provider records.
- `input_meta`: `InputMeta`, what each input declares besides its type (its fix, its row of the inputs
  table, whether it reinstalls, is secret, per server, its command-line option).
- `field_rules`, `url_rules`, `checksums`: each input's own rules, written for hostile input.
- `cross_field`: the rules that involve several inputs.
- `wire`: `ReinstallRequest`, OVH's wire format (`operatingSystem`, `customizations.imageURL`, ...).
- `checking`: `check_inputs`, the one validator, field by field, leaving alone values not known yet.
- `diffing`: `install_changes`, the differences that end up on the disk, which make a change a reinstall.
"""

from __future__ import annotations

from .checking import check_inputs, is_unknown, normalize_field
from .checksums import CHECKSUM_LENGTHS, Checksum, ChecksumType, checksum_digest, infer_checksum_type
from .cross_field import TEMPLATE_REQUIRED, Problem, checksum_problems, cross_field_problems
from .diffing import install_changes, knob_changes
from .field_rules import MAX_REQUEST_BODY_BYTES, ImageType, OperatingSystem, PreflightLevel, render_user_data
from .input_meta import CliOption, InputDoc, InputMeta
from .inputs import (
    DEFAULT_TIMEOUT_MINUTES,
    FIXES,
    INPUTS,
    INSTALL_FIELDS,
    MAX_DISK_GROUP_ID,
    MAX_TIMEOUT_MINUTES,
    OVERRIDABLE,
    SECRET_INPUTS,
    ByoiInstallationArgs,
    ByoiInstallationState,
)
from .wire import ReinstallCustomizations, ReinstallRequest

__all__ = [
    "CHECKSUM_LENGTHS",
    "DEFAULT_TIMEOUT_MINUTES",
    "FIXES",
    "INPUTS",
    "INSTALL_FIELDS",
    "MAX_DISK_GROUP_ID",
    "MAX_REQUEST_BODY_BYTES",
    "MAX_TIMEOUT_MINUTES",
    "OVERRIDABLE",
    "SECRET_INPUTS",
    "TEMPLATE_REQUIRED",
    "ByoiInstallationArgs",
    "ByoiInstallationState",
    "Checksum",
    "ChecksumType",
    "CliOption",
    "ImageType",
    "InputDoc",
    "InputMeta",
    "OperatingSystem",
    "PreflightLevel",
    "Problem",
    "ReinstallCustomizations",
    "ReinstallRequest",
    "check_inputs",
    "checksum_digest",
    "checksum_problems",
    "cross_field_problems",
    "infer_checksum_type",
    "install_changes",
    "is_unknown",
    "knob_changes",
    "normalize_field",
    "render_user_data",
]

# The checksum rules under the names they had when they were defined here.
_checksum = checksum_digest
_infer_checksum_type = infer_checksum_type
_checksum_problems = checksum_problems
