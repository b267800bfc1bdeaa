"""Figure 7's behaviour table quotes what each tool said of a failure: under Pulumi, the failed resource's own
diagnostics, not the traceback of the program the engine stopped after it (which varies from run to run and
says nothing of why)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.peers_tofu import Said  # noqa: E402

EMULATOR = SimpleNamespace(application_secret="s3cret", consumer_key="ck-123", application_key="ak-1")

# What `pulumi up` printed when pulumi-ovh's create met a 429 (abridged; the indentation is the CLI's).
PULUMI_OVH_429 = """\
Updating (bench):
    pulumi:pulumi:Stack bench-b  warning: using pulumi-resource-ovh from $PATH at /x
 +  pulumi:pulumi:Stack bench-b creating (0s) grpc._channel._InactiveRpcError: <_InactiveRpcError of RPC
 +  ovh:Dedicated:ServerReinstallTask web-ns1 creating (0s) error: 1 error occurred:
Diagnostics:
  pulumi:pulumi:Stack (bench-b):
    error: Program failed with an unhandled exception:
      File "/venv/pulumi/runtime/resource.py", line 1349, in do_register
        if isinstance(value, (list, tuple)):
    pulumi.errors.RunError: Resource monitor has terminated, shutting down

  ovh:Dedicated:ServerReinstallTask (web-ns1):
    error:   sdk-v2/provider2.go:572: failed to create reinstall task: OVHcloud API error (status code 429)
    error: 1 error occurred:
    \t* failed to create reinstall task: OVHcloud API error (status code 429)

Resources:
    + 1 created
    2 errored
"""

# What ours printed when OVH's task ended in customerError (abridged): the exception names the class.
OURS_CUSTOMER_ERROR = """\
Diagnostics:
  pulumi:pulumi:Stack (bench-bench):
    error: update failed
    [ns1] 9/21 Checking OS image: failed: image provided format is not of type raw

  pulumi-python:dynamic/ovh_byoi:ByoiInstallation (web-ns1):
    error: Traceback (most recent call last):
      File "/work/provider/ovh_byoi/installing.py", line 128, in _install
    ovh_byoi.errors.TaskFailedError: The installation on ns1 failed: OVH task 4200001 ended in customerError.
    OVH says: image provided format is not of type raw
    Fix: A raw image must contain a partition table (MBR or GPT)

Resources:
    2 errored
"""

TOFU_429 = """\
ovh_dedicated_server_reinstall_task.byoi["ns1"]: Creating...

Error: failed to create reinstall task: OVHcloud API error (status code 429) (key ak-1)

  with ovh_dedicated_server_reinstall_task.byoi["ns1"],
"""


def test_pulumi_failures_are_quoted_from_the_failed_resource_not_the_stopped_program() -> None:
    said = Said(1, PULUMI_OVH_429).last_lines(EMULATOR)  # type: ignore[arg-type]

    assert said.startswith("error: sdk-v2/provider2.go:572: failed to create reinstall task"), said
    assert "RpcError" not in said and "RunError" not in said and "from $PATH" not in said


def test_an_exception_in_the_resource_diagnostics_is_quoted_with_the_lines_after_it() -> None:
    said = Said(1, OURS_CUSTOMER_ERROR).last_lines(EMULATOR)  # type: ignore[arg-type]

    assert said == (
        "ovh_byoi.errors.TaskFailedError: The installation on ns1 failed: OVH task 4200001 ended in "
        "customerError. / OVH says: image provided format is not of type raw / Fix: A raw image must "
        "contain a partition table (MBR or GPT)"
    )


def test_terraform_errors_are_quoted_from_their_error_line_with_secrets_redacted() -> None:
    said = Said(1, TOFU_429).last_lines(EMULATOR)  # type: ignore[arg-type]

    assert said.startswith("Error: failed to create reinstall task: OVHcloud API error (status code 429)")
    assert "(key <redacted>)" in said and "ak-1" not in said
