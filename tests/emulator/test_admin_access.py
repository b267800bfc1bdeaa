"""The admin interface answers only to loopback clients, wherever the emulator listens."""

from __future__ import annotations

import asyncio
import json
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from ovh_emulator.app import build_app, front_door
from ovh_emulator.core import Emulator, EmulatorConfig


def answer_to(peer: str, method: str, path: str) -> web.StreamResponse:
    """The emulator's answer to a request from `peer` (built in memory: no network reaches a remote peer)."""

    async def call() -> web.StreamResponse:
        emulator = Emulator(EmulatorConfig(servers=1))
        try:
            app = build_app(emulator)
            transport = mock.Mock()
            transport.get_extra_info.side_effect = lambda name, default=None: (
                (peer, 40000) if name == "peername" else default
            )
            request = make_mocked_request(method, path, app=app, transport=transport)
            match = await app.router.resolve(request)
            match.add_app(app)
            request._match_info = match
            return await front_door(request, match.handler)
        finally:
            await emulator.close()

    return asyncio.run(call())


@pytest.mark.parametrize("peer", ["192.0.2.10", "2001:db8::1"])
def test_admin_routes_refuse_clients_that_are_not_on_loopback(peer: str) -> None:
    refused = answer_to(peer, "GET", "/_emulator/servers/ns1000001.emulator.ovh")

    assert isinstance(refused, web.Response)
    assert refused.status == 403
    assert refused.body is not None
    assert json.loads(bytes(refused.body)) == {"message": "the admin interface answers only on loopback"}


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1"])
def test_admin_routes_answer_loopback_clients(peer: str) -> None:
    assert answer_to(peer, "GET", "/_emulator/servers/ns1000001.emulator.ovh").status == 200


def test_api_routes_answer_any_client() -> None:
    assert answer_to("192.0.2.10", "GET", "/1.0/auth/time").status == 200
