"""The root stack: one ByoiInstallation per server declared in stack config.

    config:
      ovh-byoi:defaults:            # inputs shared by every server
        image_url: https://images.example.net/debian-12.qcow2
        image_type: qcow2
        efi_bootloader_path: \\efi\\debian\\grubx64.efi
        config_drive_user_data:     # a secret (see below): a #cloud-config document, or a mapping
          secure: v1:...
      ovh-byoi:servers:             # keyed by service name; each entry overrides the defaults, key by key
        ns3001234.ip-51-91-2.eu: {hostname: web-1}
        ns3001235.ip-51-91-2.eu: {hostname: web-2, protect: true}

Every server's inputs are checked with the resource's own rules before anything is registered, so a typo is
reported with the server, the key and the fix, for every server at once, and nothing runs.

Sensitive values (OVH's application secret and consumer key, headers, user data, metadata) must be set with
`pulumi config set --secret` (`--path --secret` for one value inside `defaults` or `servers`): Pulumi stores
the whole stack config in the state as the inputs of the provider that runs ByoiInstallation, in clear text
for every key not set as a secret, whatever the resource itself marks secret.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
from ovh_byoi import ByoiInstallation, ByoiInstallationArgs
from ovh_byoi.spec import SECRET_INPUTS, check_inputs

PROJECT = "ovh-byoi"

# Not an input of the resource: `protect: true` makes Pulumi refuse to replace (reinstall) or delete it.
RESOURCE_OPTIONS = ("protect",)
INPUTS = tuple(name for name in ByoiInstallationArgs.model_fields if name != "service_name")
KEYS = INPUTS + RESOURCE_OPTIONS
# OVH's credentials that must never sit in plain config, with the variable that can carry each instead.
SECRET_CREDENTIALS = {
    "ovh:applicationSecret": "OVH_APPLICATION_SECRET",
    "ovh:consumerKey": "OVH_CONSUMER_KEY",
    "ovh:clientSecret": "OVH_CLIENT_SECRET",
}


def _mapping(value: Any, where: str, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{where}: must be a mapping of keys to values, not {type(value).__name__}")
        return {}
    return {str(key): item for key, item in value.items()}


def _unknown_key(key: str, where: str) -> str:
    if key == "service_name":
        return (
            f"{where}.service_name: a server's key under `servers` is its service name; remove service_name"
        )
    close = difflib.get_close_matches(key, KEYS, n=1)
    hint = f"did you mean {close[0]}?" if close else f"keys are {', '.join(KEYS)}"
    return f"{where}.{key}: not a key of a server ({hint})"


Servers = dict[str, tuple[dict[str, Any], dict[str, Any]]]


def read_servers(defaults: Any, servers: Any) -> tuple[Servers, list[str]]:
    """Each server's inputs and resource options, and the config's problems (`where: what. Fix: how`)."""
    problems: list[str] = []
    shared = _mapping(defaults, "defaults", problems)
    declared = _mapping(servers, "servers", problems)
    problems += [_unknown_key(key, "defaults") for key in shared if key not in KEYS]
    if not isinstance(shared.get("protect", False), bool):
        problems.append("defaults.protect: must be true or false")
    # A bad default is reported once, with the servers it applies to.
    bad_defaults: dict[tuple[str, str], list[str]] = {}
    result: Servers = {}
    for service_name, entry in declared.items():
        where = f"servers.{service_name}"
        own = _mapping(entry, where, problems)
        problems += [_unknown_key(key, where) for key in own if key not in KEYS]
        if not isinstance(own.get("protect", False), bool):
            problems.append(f"{where}.protect: must be true or false")
        merged = {**shared, **own}
        inputs = {key: value for key, value in merged.items() if key in INPUTS}
        options = {key: value for key, value in merged.items() if key in RESOURCE_OPTIONS}
        _, input_problems = check_inputs({"service_name": service_name, **inputs})
        for problem in input_problems:
            what = f"{problem.message}. Fix: {problem.fix}"
            if problem.field == "service_name":
                problems.append(f"{where}: {what}")
            elif problem.field in shared and problem.field not in own:
                bad_defaults.setdefault((problem.field, what), []).append(service_name)
            else:
                problems.append(f"{where}.{problem.field}: {what}")
        result[service_name] = ({"service_name": service_name, **inputs}, options)
    for (field, what), names in bad_defaults.items():
        problems.append(f"defaults.{field} (for {', '.join(names)}): {what}")
    return result, problems


def _config_path(key: str, *path: str) -> str:
    """`key` and `path` as `pulumi config set --path` reads them: a name with a dot (a server) in brackets."""
    return key + "".join(f'["{part}"]' if "." in part else f".{part}" for part in path)


def _set_secret_commands(key: str, path: tuple[str, ...], value: Any) -> list[str]:
    """The `pulumi config set --path --secret` commands that store `value` (at `key` + `path`) as a secret."""
    if isinstance(value, Mapping) and path[-1] != "config_drive_user_data":
        paths = [_config_path(key, *path, str(name)) for name in value]
        return [f"pulumi config set --path --secret '{each}' <value>" for each in paths]
    # User data is one document: a mapping in config becomes a string set as a whole.
    return [f"pulumi config set --path --secret '{_config_path(key, *path)}' \"$(cat user-data.yaml)\""]


def plain_secrets(
    defaults: Any, servers: Any, is_secret: Callable[[str], bool], get: Callable[[str], Any]
) -> list[str]:
    """The sensitive values this stack's config holds in plain text, each with the command that fixes it.

    Pulumi knows secretness per top-level key: one value set with `--path --secret` encrypts the whole key
    in the state. So a sensitive value is plain when the key holding it (`defaults` or `servers`) is."""
    problems: list[str] = []
    for key, variable in SECRET_CREDENTIALS.items():
        if get(key) is not None and not is_secret(key):
            problems.append(
                f"{key}: set in plain config, so it would be stored in clear text in the state. Fix: "
                f"`pulumi config set --secret {key} <value>`, or remove it from the stack config and set "
                f"{variable} where `pulumi` runs"
            )
    holders: list[tuple[str, tuple[str, ...], Any]] = []
    if isinstance(defaults, Mapping):
        holders.append(("defaults", (), defaults))
    if isinstance(servers, Mapping):
        holders += [("servers", (str(name),), entry) for name, entry in servers.items()]
    for name, prefix, entry in holders:
        key = f"{PROJECT}:{name}"
        if is_secret(key) or not isinstance(entry, Mapping):
            continue
        for field in SECRET_INPUTS:
            if entry.get(field) is None:
                continue
            where = ".".join((name, *prefix, field))
            fixes = "; ".join(_set_secret_commands(key, (*prefix, field), entry[field]))
            problems.append(
                f"{where}: sensitive, but read from plain config, so it would be stored in clear text in the "
                f"state. Fix: set it as a secret, {fixes}"
            )
    return problems


def main() -> None:
    config = pulumi.Config()
    defaults, declared = config.get_object("defaults"), config.get_object("servers")
    servers, problems = read_servers(defaults, declared)
    problems += plain_secrets(defaults, declared, pulumi.runtime.is_config_secret, pulumi.runtime.get_config)
    if problems:
        count = len(problems)
        lines = "\n".join(f"- {problem}" for problem in problems)
        # RunError: the CLI shows the message alone, without a traceback of this program.
        raise pulumi.RunError(
            f"the stack config has {count} problem{'s' if count != 1 else ''}; nothing was changed:\n{lines}"
        )
    if not servers:
        pulumi.log.warn("no servers in the stack config: add them under `servers`, keyed by service name")
    installed: dict[str, ByoiInstallation] = {}
    for service_name, (inputs, options) in servers.items():
        # Named after the server, which never changes: a name that did would turn a reinstall into a
        # create and a delete, and the preview would not show the `+-` replacement reviewers look for.
        installed[service_name] = ByoiInstallation(
            service_name, **inputs, opts=pulumi.ResourceOptions(protect=options.get("protect", False))
        )
    pulumi.export(
        "servers",
        {
            service_name: {
                "os": server.os,
                "task_id": server.task_id,
                "installed_at": server.installed_at,
                "drift": server.drift,
            }
            for service_name, server in installed.items()
        },
    )


main()
