"""A stand-in for the Pulumi CLI (not installable here) for the one command `drift-check` runs:

    pulumi refresh --preview-only --expect-no-changes --diff --non-interactive --stack STACK

It runs the refresh with the project's local engine (real provider processes, against the emulator at
`STAND_IN_BASE_URL`, state in `STAND_IN_STATE`, the reinstall journal at `OVH_BYOI_JOURNAL`) and answers as
the CLI does: the drifted properties as `--diff` shows them, then `error: no changes were expected but changes
occurred` and status 255; any other failure is an `error:` line and status 255 too.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ovh_byoi_harness.demo import retarget, stack_config
from ovh_byoi_harness.engine import ChangesNotExpectedError, LocalEngine

EXPECTED = ["refresh", "--preview-only", "--expect-no-changes", "--diff", "--non-interactive", "--stack"]


def main(argv: list[str]) -> int:
    if argv[:-1] != EXPECTED:
        print(f"error: this stand-in only runs `pulumi {' '.join(EXPECTED)} STACK`, not {argv}")
        return 255
    stack = argv[-1]
    project = Path.cwd()
    config = retarget(stack_config(project, stack), os.environ["STAND_IN_BASE_URL"])
    engine = LocalEngine.for_project(
        project,
        os.environ["STAND_IN_STATE"],
        stack=stack,
        config=config,
        env={"OVH_BYOI_TIME_SCALE": "600", "OVH_BYOI_JOURNAL": os.environ["OVH_BYOI_JOURNAL"]},
        passphrase="examples",
        progress=print,
    )
    try:
        result = engine.refresh(preview_only=True, expect_no_changes=True)
    except ChangesNotExpectedError as error:
        for step in error.result.changes():
            drift = error.result.outputs.get(step.urn, {}).get("drift")
            print(f'    ~ {step.name}: drift: "" => {json.dumps(drift)}')
        print("error: no changes were expected but changes occurred")
        return 255
    if not result.ok:
        print(f"error: {json.dumps(result.errors)}")
        return 255
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
