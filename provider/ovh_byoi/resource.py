"""ByoiInstallation: the resource users declare, one per server. Declaring it installs the image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic

from .provider import ByoiProvider
from .redaction import url_carries_secrets
from .spec import INPUTS, SECRET_INPUTS, render_user_data

__all__ = ["ByoiInstallation"]


def _user_data_text(value: Any) -> Any:
    return render_user_data(value) if isinstance(value, Mapping) else value


def _secret_if_signed(url: Any) -> Any:
    # A pre-signed URL's query string is a bearer token (S3 X-Amz-Signature, Swift temp_url_sig): anyone
    # holding the URL downloads the image until it expires. A plain URL stays readable in the state.
    return pulumi.Output.secret(url) if isinstance(url, str) and url_carries_secrets(url) else url


class ByoiInstallation(pulumi.dynamic.Resource, module="ovh_byoi", name="ByoiInstallation"):
    """This OVHcloud dedicated server runs this image, installed with OVH's Bring Your Own Image.

    Changing what ends up on the disk (an input of `ovh_byoi.spec.INSTALL_FIELDS`, or the image, identified by
    its checksum when both old and new have one, else by its URL) replaces the resource, which reinstalls the
    server. Any other change, such as moving the image to another URL with the same checksum, only records
    the new values. docs/reference.md's inputs table says it for each input.

    `pulumi refresh` records in `drift` why a server no longer runs what the stack says (reinstalled outside
    the stack, another OS, in error); the next `pulumi up` then reinstalls it. To accept the server as it is
    instead, set `adopt=True` for that `up`: the replacement adopts the server without installing.
    """

    service_name: pulumi.Output[str]
    image_url: pulumi.Output[str]
    image_type: pulumi.Output[str | None]
    efi_bootloader_path: pulumi.Output[str | None]
    image_checksum: pulumi.Output[str | None]
    image_checksum_type: pulumi.Output[str | None]
    hostname: pulumi.Output[str | None]
    ssh_key: pulumi.Output[str | None]
    config_drive_user_data: pulumi.Output[str | None]
    config_drive_metadata: pulumi.Output[Mapping[str, str] | None]
    http_headers: pulumi.Output[Mapping[str, str] | None]
    operating_system: pulumi.Output[str]
    disk_group_id: pulumi.Output[int | None]
    adopt: pulumi.Output[bool]
    timeout_minutes: pulumi.Output[int]
    preflight: pulumi.Output[str]
    task_id: pulumi.Output[int | None]
    """The OVH reinstall task that installed the image (for an adopted server: the latest one)."""
    installed_at: pulumi.Output[str | None]
    """When OVH finished that task."""
    os: pulumi.Output[str | None]
    """The operating system template OVH reported once the install was done."""
    drift: pulumi.Output[str]
    """Empty, or why the server no longer runs what the stack says (found by refresh; next up reinstalls)."""

    # Over 50 lines by its keyword parameters, one per input so that users' IDEs show them all.
    def __init__(
        self,
        resource_name: str,
        *,
        service_name: pulumi.Input[str],
        image_url: pulumi.Input[str],
        image_type: pulumi.Input[str] | None = None,
        efi_bootloader_path: pulumi.Input[str] | None = None,
        image_checksum: pulumi.Input[str] | None = None,
        image_checksum_type: pulumi.Input[str] | None = None,
        hostname: pulumi.Input[str] | None = None,
        ssh_key: pulumi.Input[str] | None = None,
        config_drive_user_data: pulumi.Input[str] | pulumi.Input[Mapping[str, Any]] | None = None,
        config_drive_metadata: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None,
        http_headers: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None,
        operating_system: pulumi.Input[str] | None = None,
        disk_group_id: pulumi.Input[int] | None = None,
        adopt: pulumi.Input[bool] | None = None,
        timeout_minutes: pulumi.Input[int] | None = None,
        preflight: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Declare that `service_name` runs the image at `image_url`.

        `config_drive_user_data` may be a `#cloud-config` document, a `#!` script, or a mapping (rendered as a
        `#cloud-config` document). `preflight` is `quick` (default), `full` or `off`; `adopt=True` takes over
        a server that already runs this image without reinstalling it. `image_type` and `efi_bootloader_path`
        are required by `byoi_64` (the default), not by `byolinux_64` (qcow2 only). `disk_group_id` picks the
        disk group the image goes to (its first disk; default: OVH's automatic choice, disk group 1).
        """
        # The keyword parameters are the model's inputs (tests/provider/test_signatures.py checks it).
        arguments = dict(locals())
        props: dict[str, Any] = {name: arguments[name] for name in INPUTS}
        if config_drive_user_data is not None:
            props["config_drive_user_data"] = pulumi.Output.from_input(config_drive_user_data).apply(
                _user_data_text
            )
        # Always secret in state, whatever the program passed (each input's `secret` in spec/inputs.py says
        # why). `image_url` is secret too when it carries a token (a pre-signed URL's query string).
        for name in SECRET_INPUTS:
            if props[name] is not None:
                props[name] = pulumi.Output.secret(props[name])
        secret_outputs = list(SECRET_INPUTS)
        if isinstance(image_url, str):
            if url_carries_secrets(image_url):
                secret_outputs.append("image_url")
                props["image_url"] = pulumi.Output.secret(image_url)
        else:
            # Known only later: the output is marked secret by name when the input turns out to be.
            props["image_url"] = pulumi.Output.from_input(props["image_url"]).apply(_secret_if_signed)
        # Outputs only: present so that the resource object exposes them.
        props.update(task_id=None, installed_at=None, os=None, drift=None)
        secrets = pulumi.ResourceOptions(additional_secret_outputs=secret_outputs)
        super().__init__(ByoiProvider(), resource_name, props, pulumi.ResourceOptions.merge(opts, secrets))
