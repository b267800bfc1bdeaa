"""The stack state the local engine keeps between runs: one JSON file, secret values encrypted.

Secrets are stored as Pulumi stores them in a checkpoint, an envelope holding a ciphertext, with a key derived
from a passphrase (`PULUMI_CONFIG_PASSPHRASE`, empty by default, as Pulumi's passphrase secrets provider).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key

__all__ = ["ResourceState", "StateError", "StateFile"]

_FORMAT_VERSION = 1
_KDF_ITERATIONS = 100_000
_PASSPHRASE_CHECK = "pulumi"


class StateError(RuntimeError):
    """The state file cannot be used as it is (unreadable, another format, wrong passphrase)."""


@dataclass(frozen=True)
class ResourceState:
    urn: str
    type: str
    name: str
    custom: bool
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    provider: str = ""
    parent: str = ""
    dependencies: tuple[str, ...] = ()
    protect: bool = False
    secret_inputs: frozenset[str] = frozenset()
    secret_outputs: frozenset[str] = frozenset()
    additional_secret_outputs: tuple[str, ...] = ()
    # A replaced resource waiting for its deletion at the end of the run, as the engine's `delete: true`.
    pending_delete: bool = False

    def but(self, **changes: Any) -> ResourceState:
        return replace(self, **changes)


@dataclass
class _Cipher:
    salt: bytes
    iterations: int
    key: bytes = field(repr=False)

    @classmethod
    def derive(cls, passphrase: str, salt: bytes, iterations: int) -> _Cipher:
        kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
        return cls(salt, iterations, kdf.derive(passphrase.encode()))

    def encrypt(self, value: Any) -> str:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self.key).encrypt(nonce, json.dumps(value).encode(), None)
        return f"v1:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}"

    def decrypt(self, ciphertext: str) -> Any:
        version, nonce, sealed = ciphertext.split(":", 2)
        if version != "v1":
            raise StateError(f"unknown secret format {version!r}")
        plain = AESGCM(self.key).decrypt(base64.b64decode(nonce), base64.b64decode(sealed), None)
        return json.loads(plain)


class StateFile:
    """Reads and writes the state atomically; safe to save from several threads."""

    def __init__(self, path: str | Path, *, passphrase: str | None = None) -> None:
        self.path = Path(path)
        self._passphrase = (
            passphrase if passphrase is not None else os.environ.get("PULUMI_CONFIG_PASSPHRASE", "")
        )
        self._cipher: _Cipher | None = None
        self._lock = threading.Lock()

    def _opening_cipher(self, header: Mapping[str, Any]) -> _Cipher:
        salt = base64.b64decode(header["salt"])
        if self._cipher is not None and self._cipher.salt == salt:
            return self._cipher
        cipher = _Cipher.derive(self._passphrase, salt, int(header["iterations"]))
        try:
            cipher.decrypt(header["check"])
        except (InvalidTag, ValueError) as error:
            raise StateError(
                f"{self.path}: the passphrase does not open this state's secrets; "
                "set PULUMI_CONFIG_PASSPHRASE to the one it was written with"
            ) from error
        self._cipher = cipher
        return cipher

    def _sealing_cipher(self) -> _Cipher:
        if self._cipher is None:
            self._cipher = _Cipher.derive(self._passphrase, secrets.token_bytes(16), _KDF_ITERATIONS)
        return self._cipher

    def load(self) -> list[ResourceState]:
        if not self.path.exists():
            return []
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise StateError(f"{self.path}: not a readable state file ({error})") from error
        if not isinstance(document, dict) or document.get("version") != _FORMAT_VERSION:
            raise StateError(
                f"{self.path}: not a state file of this harness (format version {_FORMAT_VERSION})"
            )
        if "secrets" not in document:
            raise StateError(f"{self.path}: the state file has no secrets header")
        cipher = self._opening_cipher(document["secrets"])
        return [self._decode(cipher, record) for record in document.get("resources", [])]

    def save(self, resources: Iterable[ResourceState]) -> None:
        with self._lock:
            cipher = self._sealing_cipher()
            document = {
                "version": _FORMAT_VERSION,
                "secrets": {
                    "salt": base64.b64encode(cipher.salt).decode(),
                    "iterations": cipher.iterations,
                    "check": cipher.encrypt(_PASSPHRASE_CHECK),
                },
                "resources": [self._encode(cipher, resource) for resource in resources],
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(document, out, indent=2, sort_keys=True)
                    out.write("\n")
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise

    @staticmethod
    def _seal(cipher: _Cipher, props: Mapping[str, Any], secret_names: frozenset[str]) -> dict[str, Any]:
        return {
            key: {_special_sig_key: _special_secret_sig, "ciphertext": cipher.encrypt(value)}
            if key in secret_names
            else value
            for key, value in props.items()
        }

    @staticmethod
    def _open(cipher: _Cipher, props: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
        plain: dict[str, Any] = {}
        names: set[str] = set()
        for key, value in props.items():
            if isinstance(value, dict) and value.get(_special_sig_key) == _special_secret_sig:
                plain[key] = cipher.decrypt(value["ciphertext"])
                names.add(key)
            else:
                plain[key] = value
        return plain, frozenset(names)

    def _encode(self, cipher: _Cipher, resource: ResourceState) -> dict[str, Any]:
        return {
            "urn": resource.urn,
            "type": resource.type,
            "name": resource.name,
            "custom": resource.custom,
            "id": resource.id,
            "provider": resource.provider,
            "parent": resource.parent,
            "dependencies": list(resource.dependencies),
            "protect": resource.protect,
            "additionalSecretOutputs": list(resource.additional_secret_outputs),
            "pendingDelete": resource.pending_delete,
            "inputs": self._seal(cipher, resource.inputs, resource.secret_inputs),
            "outputs": self._seal(cipher, resource.outputs, resource.secret_outputs),
        }

    def _decode(self, cipher: _Cipher, record: Mapping[str, Any]) -> ResourceState:
        inputs, secret_inputs = self._open(cipher, record.get("inputs", {}))
        outputs, secret_outputs = self._open(cipher, record.get("outputs", {}))
        return ResourceState(
            urn=record["urn"],
            type=record["type"],
            name=record["name"],
            custom=bool(record.get("custom", True)),
            id=record.get("id", ""),
            inputs=inputs,
            outputs=outputs,
            provider=record.get("provider", ""),
            parent=record.get("parent", ""),
            dependencies=tuple(record.get("dependencies", ())),
            protect=bool(record.get("protect", False)),
            secret_inputs=secret_inputs,
            secret_outputs=secret_outputs,
            additional_secret_outputs=tuple(record.get("additionalSecretOutputs", ())),
            pending_delete=bool(record.get("pendingDelete", False)),
        )
