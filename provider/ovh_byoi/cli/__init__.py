"""The `ovh-byoi` command: verify an image, install it on a server, follow an install.

OVH credentials are found as OVH's own client finds them: `OVH_ENDPOINT`, `OVH_APPLICATION_KEY`,
`OVH_APPLICATION_SECRET`, `OVH_CONSUMER_KEY` (or `OVH_CLIENT_ID` and `OVH_CLIENT_SECRET`), then `./ovh.conf`,
`~/.ovh.conf`, `/etc/ovh.conf`; `--endpoint` names the API (a region such as `ovh-eu`, or an http(s) URL such
as a local emulator's). Exit status: 0 when all is well, 1 when the image has problems or OVH failed, 2 for
bad input.
"""

from __future__ import annotations

# Each module adds its command to `main` as it is imported.
from . import install, status, verify
from .app import main

__all__ = ["install", "main", "status", "verify"]
