"""What sits in the state, read in the raw checkpoint file: no credential and no sensitive input in clear
text, although the engine stores the whole stack config there as the dynamic provider's inputs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ovh_emulator.testing import RunningEmulator

from .conftest import WEB_2, demo_stack

HEADER = "Basic " + base64.b64encode(b"mirror:header-secret-5521").decode()
METADATA = "metadata-secret-8812"


def test_the_state_holds_no_credential_header_user_data_or_metadata_in_clear_text(
    emulator: RunningEmulator, test_images: dict[str, Path], tmp_path: Path
) -> None:
    stack = demo_stack(emulator, test_images, tmp_path)
    stack.set_secrets(
        {
            f'ovh-byoi:servers["{WEB_2}"].http_headers.Authorization': HEADER,
            f'ovh-byoi:servers["{WEB_2}"].config_drive_metadata.token': METADATA,
        }
    )

    up = stack.up()

    drive = emulator.server(WEB_2)["configDrive"]
    assert drive["metadata"] == {"role": "web", "token": METADATA}, "the values reached OVH"
    user_data = base64.b64decode(drive["userData"]).decode()
    raw = stack.raw_state()
    # The engine stores the stack config as the provider's inputs: a plain key is there as written.
    [provider] = [
        item for item in json.loads(raw)["checkpoint"]["latest"]["resources"] if "providers" in item["type"]
    ]
    assert provider["inputs"]["ovh:applicationKey"] == emulator.application_key
    secrets = {
        "application secret": emulator.application_secret,
        "consumer key": emulator.consumer_key,
        "header": HEADER,
        "header's credential": "header-secret-5521",
        "metadata": METADATA,
        "user data": user_data,
        "user data's timezone": "Europe/Paris",
    }
    assert [what for what, value in secrets.items() if value in raw] == []
    assert [what for what, value in secrets.items() if value in up.output] == []
