"""ByoiFleet: one image rolled across many servers, a canary first, then batches, stopping at a failure.

Design notes:

- One `ByoiInstallation` child per server, so each server keeps its own state, drift and failure.
- All children share one explicit `pulumi-python` provider, `<fleet>-provider`: one provider process per
  fleet per run. A provider process of Pulumi's Python dynamic providers is served on a pool of four workers
  by Pulumi's SDK, and a create waits on OVH for minutes, so a shared provider once capped a rollout at four
  installs at once; the provider now widens that pool when it is configured (`sdk_compat.widen_serving_pool`),
  which leaves the engine's `--parallel` as the only limit. Fleets written before gave each server a provider
  of its own (`<fleet>-<service name>-provider`), which cost a process (about 50 MB, and a second of start-up
  spent one server after the other) per server on every preview, up and refresh.
- Moving a server to another explicit provider, or changing its provider's inputs (rotated credentials), is
  a replacement, which here means a reinstall, on engines released before February 2025 (pulumi/pulumi#18509);
  from 3.151 the engine asks the provider's DiffConfig, which the dynamic provider does not implement, and
  that is no replacement: the upgrade from one provider per server to the shared one moves every server to
  `<fleet>-provider` and deletes the old providers, and reinstalls nothing (`tests/fleet`, under the real
  CLI). Adding or removing servers, or changing `canary` or `max_parallel`, moves no server. So the fleet
  refuses to run on a CLI it cannot show to be safe (`require_engine_version`): the engine answers
  `RequirePulumiVersion` from 3.217; from 3.182 it supports resource hooks, which tells the same; an older
  engine gives a program no way to tell 3.151 from 3.150, so 3.182 is the minimum.
- An explicit provider does not receive the stack config: the fleet's gets the `ovh:*` keys the provider's
  `configure()` reads as its own properties, the secret ones wrapped as secrets so that the state keeps
  them encrypted. Keys left unset are left out: the provider then falls back to OVH_* variables and
  ovh.conf, as the default provider does.
- The engine runs at most `--parallel` steps at once (default 4 x the CPUs, or PULUMI_PARALLEL): a batch
  larger than that runs `--parallel` at a time, still after the previous batch. A program cannot raise it,
  so the fleet warns, naming the flag, when its largest batch is over it.
- Batches are fixed by sorted service names: the first `canary` servers, then runs of `max_parallel`. Every
  child of a batch `depends_on` the whole previous batch; the SDK registers a resource only once its
  dependencies are done and never when one failed, so a failure stops the rollout where it is. Dependencies
  are not part of a diff: a server moving to another batch (another server was added) is not changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import grpc
import pulumi
from pulumi.runtime import settings
from pulumi.runtime.config import is_config_secret
from pulumi.runtime.proto import engine_pb2, resource_pb2

from .ovh_api import CONFIG_KEYS
from .resource import ByoiInstallation
from .spec import OVERRIDABLE

__all__ = ["MINIMUM_PULUMI_VERSION", "ByoiFleet", "require_engine_version"]

DEFAULT_MAX_PARALLEL: Final = 4
# The first CLI on which moving a resource to another explicit provider, or changing that provider's inputs,
# is not a replacement (pulumi/pulumi#18509): below it, a fleet could reinstall servers nobody changed.
ENGINE_WITHOUT_PROVIDER_REPLACEMENT: Final = "3.151.0"
# The first engine a program can recognise as not older than that: it supports resource hooks (3.217 and
# later also answer RequirePulumiVersion). scripts/get-pulumi's PULUMI_MINIMUM and the README say the same.
MINIMUM_PULUMI_VERSION: Final = "3.182.0"
DYNAMIC_PROVIDER_PACKAGE: Final = "pulumi-python"
# Credentials the provider's configure() reads that must stay encrypted in the state.
SECRET_SETTINGS: Final = frozenset({"application_secret", "consumer_key", "client_secret"})


def rollout_batches(service_names: Sequence[str], *, canary: int, max_parallel: int) -> list[list[str]]:
    """The batches in rollout order: the first `canary` servers by name, then runs of `max_parallel`."""
    ordered = sorted(service_names)
    batches = [ordered[:canary]] if canary > 0 and ordered else []
    rest = ordered[canary:]
    batches += [rest[start : start + max_parallel] for start in range(0, len(rest), max_parallel)]
    return batches


def provider_credentials() -> dict[str, pulumi.Input[str]]:
    """The stack's `ovh:*` config as the properties of an explicit provider, secrets kept secret."""
    properties: dict[str, pulumi.Input[str]] = {}
    for setting, key in CONFIG_KEYS.items():
        namespace, name = key.split(":", 1)
        config = pulumi.Config(namespace)
        if setting in SECRET_SETTINGS or is_config_secret(key):
            secret = config.get_secret(name)
            if secret is not None:
                properties[key] = secret
        else:
            value = config.get(name)
            if value is not None:
                properties[key] = value
    return properties


def require_engine_version(fleet: str, minimum: str = MINIMUM_PULUMI_VERSION) -> None:
    """Raise unless the engine running this program is the Pulumi CLI `minimum` or later.

    Does nothing outside a real engine (unit tests under Pulumi's mocks have no engine to ask).
    """
    engine = settings.get_engine()
    ask = getattr(engine, "RequirePulumiVersion", None)
    if ask is None:
        return
    upgrade = (
        f"Fix: upgrade the Pulumi CLI to {minimum} or later (`pulumi version` shows yours; "
        "https://www.pulumi.com/docs/install/)."
    )
    try:
        ask(engine_pb2.RequirePulumiVersionRequest(pulumi_version_range=f">={minimum}"))
        return
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNIMPLEMENTED:
            raise pulumi.RunError(
                f"ByoiFleet {fleet} needs the Pulumi CLI {minimum} or later: the engine says "
                f"{error.details()!r}. Older CLIs replace (reinstall) a server when its provider's settings "
                f"change. {upgrade}"
            ) from None
    # Engines older than the version check: one that supports resource hooks is recent enough.
    if settings.monitor_supports_feature(resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_HOOKS):
        return
    raise pulumi.RunError(
        f"ByoiFleet {fleet} needs the Pulumi CLI {minimum} or later, and this one is older: CLIs before "
        f"{ENGINE_WITHOUT_PROVIDER_REPLACEMENT} replace (reinstall) a server when its provider's settings "
        f"change, and CLIs before {minimum} cannot show a program they are not that old. {upgrade}"
    )


def engine_parallel() -> int | None:
    """The engine's `--parallel` as it passed it to this program, or None when unknown."""
    parallel = getattr(settings.SETTINGS, "parallel", None)
    return parallel if isinstance(parallel, int) and parallel > 0 else None


def _check_int(fleet: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise pulumi.RunError(
            f"ByoiFleet {fleet}: {name} must be a whole number of at least {minimum}, got {value!r}. "
            f"Fix: pass e.g. {name}={max(minimum, 1)}."
        )
    return value


def _server_overrides(fleet: str, servers: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(servers, Mapping):
        raise pulumi.RunError(
            f"ByoiFleet {fleet}: servers must map service names to per-server settings, got "
            f"{type(servers).__name__}. Fix: servers={{'ns1234567.ip-1-2-3.eu': {{'hostname': 'web-1'}}}}."
        )
    checked: dict[str, dict[str, Any]] = {}
    for service_name, overrides in servers.items():
        if not isinstance(service_name, str) or not service_name.strip():
            raise pulumi.RunError(
                f"ByoiFleet {fleet}: {service_name!r} is not a service name. Fix: use the server's "
                "service name, as `ovh-byoi status` or OVH's control panel shows it (ns1234567.ip-1-2-3.eu)."
            )
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, Mapping):
            raise pulumi.RunError(
                f"ByoiFleet {fleet}: the settings of {service_name} must be a mapping (or None), got "
                f"{type(overrides).__name__}. Fix: {{'hostname': 'web-1'}}."
            )
        unknown = sorted(str(key) for key in overrides if key not in OVERRIDABLE)
        if unknown:
            raise pulumi.RunError(
                f"ByoiFleet {fleet}: {service_name} sets {', '.join(unknown)}, which a server cannot set. "
                f"Fix: use only {', '.join(OVERRIDABLE)} (the service name is the key itself)."
            )
        checked[service_name] = dict(overrides)
    return checked


class ByoiFleet(pulumi.ComponentResource):
    """These OVHcloud dedicated servers run this image, rolled out a canary first, then in batches.

    `servers` maps each service name to what it sets for itself (a hostname, an SSH key, its own user data,
    or any other input of `ByoiInstallation`); every other input is shared. On each `pulumi up`, the servers
    whose install changes are reinstalled in order: the first `canary` servers by name, then batches of at
    most `max_parallel`, each batch once the previous one has finished. A failed install stops the rollout:
    the servers of later batches are left untouched (those of the failed batch that were running finish).
    Servers whose install does not change are not touched, whatever batch they fall in.
    """

    installations: dict[str, ByoiInstallation]
    """Each server's installation, by service name."""
    batches: list[list[str]]
    """Service names in rollout order, batch by batch."""

    # Over 50 lines by its keyword parameters, one per input so that users' IDEs show them all.
    def __init__(
        self,
        name: str,
        *,
        servers: Mapping[str, Mapping[str, Any] | None],
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
        canary: int = 1,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Declare that every server of `servers` runs the image at `image_url`, rolled out in batches.

        The inputs are those of `ByoiInstallation`, shared by all servers; a server's own settings in
        `servers` take precedence. `canary` (default 1, may be 0) servers go first, alone; then batches of
        `max_parallel` (default 4) run at once.
        """
        overrides = _server_overrides(name, servers)
        canary = _check_int(name, "canary", canary, 0)
        max_parallel = _check_int(name, "max_parallel", max_parallel, 1)
        require_engine_version(name)
        super().__init__("ovh_byoi:index:ByoiFleet", name, None, opts)

        # The keyword parameters are the inputs a server may override (tests/provider/test_signatures.py).
        arguments = dict(locals())
        shared: dict[str, Any] = {field: arguments[field] for field in OVERRIDABLE}
        self.batches = rollout_batches(list(overrides), canary=canary, max_parallel=max_parallel)
        self._warn_when_parallel_is_lower(name)
        # One provider for the whole fleet (its process serves every server at once; see the module's notes).
        provider = pulumi.ProviderResource(
            DYNAMIC_PROVIDER_PACKAGE,
            f"{name}-provider",
            provider_credentials(),
            pulumi.ResourceOptions(parent=self),
        )
        self.installations = {}
        previous: list[pulumi.Resource] = []
        for batch in self.batches:
            current: list[pulumi.Resource] = []
            for service_name in batch:
                self.installations[service_name] = ByoiInstallation(
                    f"{name}-{service_name}",
                    service_name=service_name,
                    **{**shared, **overrides[service_name]},
                    opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=list(previous)),
                )
                current.append(self.installations[service_name])
            previous = current
        self.register_outputs(
            {"task_ids": {sn: installation.task_id for sn, installation in self.installations.items()}}
        )

    def _warn_when_parallel_is_lower(self, name: str) -> None:
        """Warn, naming the flag, when the engine's --parallel is below the largest batch (see the notes)."""
        largest = max((len(batch) for batch in self.batches), default=0)
        parallel = engine_parallel()
        if parallel is not None and largest > parallel:
            pulumi.log.warn(
                f"ByoiFleet {name}: batches of up to {largest} servers, but this run's --parallel is "
                f"{parallel}: at most {parallel} install at once, the others of a batch as those finish. "
                f"Fix: `pulumi up --parallel {largest}` (or PULUMI_PARALLEL={largest}), "
                f"or max_parallel={parallel}.",
                resource=self,
            )
