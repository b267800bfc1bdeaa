"""Runs the real Pulumi CLI on a copy of a project, as a user runs it: a local file backend, a passphrase, no
network, the provider's clock in step with the emulator's.

    stack = PulumiStack.create(EXAMPLES / "01-single-server", tmp_path, "emulator", emulator=emulator)
    stack.up()                                  # raises CliError, with the CLI's output, when it fails
    stack.preview("--diff", "--expect-no-changes")
    state = stack.export()                      # `pulumi stack export --show-secrets`, parsed

The CLI comes from `scripts/get-pulumi` (run by `scripts/bootstrap`), linked into the virtualenv's `bin`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import yaml

ROOT = Path(__file__).resolve().parents[2]
# The virtualenv that runs the tests runs the programs too: the package under test is installed there.
VENV = Path(sys.prefix)
PULUMI = VENV / "bin" / "pulumi"
PASSPHRASE = "tests-passphrase"
# The address the projects' emulator stack files point at; a test's emulator listens elsewhere.
# Files a copy of a project needs; its stack files are written by `PulumiStack.create`.
PROJECT_FILES = ("Pulumi.yaml", "*.py", "drift-check")
# Past this, a command is stuck: the tests' installs take seconds (the emulator runs 600 times OVH's pace).
COMMAND_TIMEOUT = 240


# A program whose resources a test declares through the environment (`PulumiStack.declare`): values passed
# that way reach the provider as the program's inputs and never the stack config, which the engine stores.
RESOURCES_PROGRAM = """\
import contextlib
import json
import os

import pulumi
from ovh_byoi import ByoiInstallation

for name, declared in json.loads(os.environ["BYOI_TEST_RESOURCES"]).items():
    options = pulumi.ResourceOptions(protect=declared.pop("protect", False))
    ByoiInstallation(name, **declared, opts=options)
"""


def secret_in_state(value: Any) -> bool:
    """Whether a value of a checkpoint is one the stack's secrets provider encrypted (Pulumi's secret
    signature, `4dabf18193072939515e22adb298388d`, marks them)."""
    return isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == (
        "1b47061264138c4ac30d75fd1eb44270"
    )


def revealed(value: Any) -> Any:
    """A value of `pulumi stack export --show-secrets`, with a secret's plaintext in place of its wrapper."""
    if secret_in_state(value) and "plaintext" in value:
        return json.loads(value["plaintext"])
    return value


class CliError(AssertionError):
    """A `pulumi` command that ended otherwise than the test expected; carries what the CLI printed."""


@dataclass
class Run:
    args: tuple[str, ...]
    returncode: int
    output: str  # stdout and stderr, interleaved as the CLI wrote them

    def __str__(self) -> str:
        return f"$ pulumi {' '.join(self.args)}  (exit {self.returncode})\n{self.output}"


@dataclass
class PulumiStack:
    project: Path  # the copy the CLI runs in
    stack: str
    env: dict[str, str] = field(repr=False)

    @classmethod
    def create(
        cls,
        source: Path,
        work: Path,
        stack: str,
        *,
        emulator: Any = None,
        config: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
        stack_file: str | None = None,
        env: Mapping[str, str] | None = None,
        time_scale: float = 600,
    ) -> Self:
        """A new stack `stack` of a copy of the project in `source`, in `work`.

        Config: the `config` of `source/Pulumi.<stack_file or stack>.yaml` if there is one, with its emulator
        URLs moved to `emulator`'s, updated with `config`; then `secrets`, set with `pulumi config set
        --secret` as a user sets credentials. Without secrets of its own, a stack pointed at an emulator gets
        its credentials that way.
        """
        project = _copy_project(source, work / "project")
        environment = _environment(work, time_scale, env)
        (work / "backend").mkdir()
        created = cls(project=project, stack=stack, env=environment)
        created.run("stack", "init", stack)
        written = yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text()) or {}
        values: dict[str, Any] = {}
        source_file = source / f"Pulumi.{stack_file or stack}.yaml"
        if source_file.exists():
            values.update((yaml.safe_load(source_file.read_text()) or {}).get("config") or {})
        if emulator is not None:
            values = emulator.retarget(values)
            if secrets is None:
                secrets = emulator_credentials(emulator)
        values.update(config or {})
        for key in secrets or {}:
            values.pop(key, None)  # a path's top-level key keeps its plain values
        written["config"] = values
        created.stack_file.write_text(yaml.safe_dump(written, sort_keys=False))
        if secrets:
            created.set_secrets(secrets)
        return created

    @classmethod
    def of_resources(cls, work: Path, *, emulator: Any, **options: Any) -> Self:
        """A stack of `RESOURCES_PROGRAM` (project `byoi-test`, stack `test`): `declare` says what it
        holds."""
        source = work / "source"
        source.mkdir(parents=True)
        (source / "Pulumi.yaml").write_text("name: byoi-test\nruntime: python\n")
        (source / "__main__.py").write_text(RESOURCES_PROGRAM)
        return cls.create(source, work / "run", "test", emulator=emulator, **options)

    def declare(self, resources: Mapping[str, Mapping[str, Any]]) -> None:
        """The `ByoiInstallation`s the next run of `RESOURCES_PROGRAM` declares: their inputs (and
        `protect`) by name."""
        self.env["BYOI_TEST_RESOURCES"] = json.dumps(resources)

    def set_secrets(self, secrets: Mapping[str, str]) -> None:
        """`pulumi config set-all --secret`; a key with a path (`ovh-byoi:servers["ns1.x"].http_headers.A`)
        is set with `--path`, as a user sets one secret value inside a structured key."""
        plain = {key: value for key, value in secrets.items() if not _is_path(key)}
        nested = {key: value for key, value in secrets.items() if _is_path(key)}
        for flags, values in ((), plain), (("--path",), nested):
            if values:
                pairs = [arg for key, value in values.items() for arg in ("--secret", f"{key}={value}")]
                self.run("config", "set-all", *flags, *pairs)

    @property
    def stack_file(self) -> Path:
        return self.project / f"Pulumi.{self.stack}.yaml"

    def config(self) -> dict[str, Any]:
        """The stack file's `config`, as written (secrets encrypted)."""
        config: dict[str, Any] = (yaml.safe_load(self.stack_file.read_text()) or {}).get("config") or {}
        return config

    def set_config(self, config: Mapping[str, Any]) -> None:
        """Replaces the stack file's plain `config` keys (an edit a user makes in a pull request)."""
        document = yaml.safe_load(self.stack_file.read_text()) or {}
        document["config"] = {**(document.get("config") or {}), **config}
        self.stack_file.write_text(yaml.safe_dump(document, sort_keys=False))

    def run(
        self,
        *args: str,
        expect: int | None = 0,
        timeout: float = COMMAND_TIMEOUT,
        env: Mapping[str, str | None] | None = None,
    ) -> Run:
        """`pulumi ARGS --non-interactive --stack STACK`; raises CliError unless it exits with `expect`
        (None: any status). `env` changes the stack's environment for this command (None: unset)."""
        command = [str(PULUMI), *args, "--non-interactive"]
        if args[:2] != ("stack", "init"):
            command += ["--stack", self.stack]
        done = subprocess.run(
            command,
            cwd=self.project,
            env=self._environment(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        run = Run(tuple(args), done.returncode, done.stdout)
        if expect is not None and run.returncode != expect:
            raise CliError(f"expected exit {expect}:\n{run}")
        return run

    def up(self, *args: str, expect: int | None = 0) -> Run:
        return self.run("up", "--yes", "--skip-preview", *args, expect=expect)

    def preview(self, *args: str, expect: int | None = 0) -> Run:
        return self.run("preview", *args, expect=expect)

    def refresh(self, *args: str, expect: int | None = 0) -> Run:
        if "--preview-only" in args:
            # The CLI refuses `--preview-only` with `--yes`, and PULUMI_SKIP_CONFIRMATIONS counts as `--yes`.
            return self.run("refresh", *args, expect=expect, env={"PULUMI_SKIP_CONFIRMATIONS": None})
        return self.run("refresh", "--yes", *args, expect=expect)

    def _environment(self, changes: Mapping[str, str | None] | None) -> dict[str, str]:
        environment = dict(self.env)
        for key, value in (changes or {}).items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        return environment

    def export(self) -> dict[str, Any]:
        """The stack's state with secrets decrypted, as `pulumi stack export --show-secrets` gives it."""
        state: dict[str, Any] = json.loads(self.run("stack", "export", "--show-secrets").output)
        return state

    def checkpoint(self) -> dict[str, dict[str, Any]]:
        """The resources of the checkpoint as stored (secrets encrypted), by name."""
        latest = json.loads(self.raw_state())["checkpoint"]["latest"]
        return {resource["urn"].rsplit("::", 1)[1]: resource for resource in latest.get("resources", [])}

    def raw_state(self) -> str:
        """The checkpoint file as it sits in the backend: what anyone with read access to it sees."""
        backend = Path(self.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
        files = list(backend.glob(f".pulumi/stacks/**/{self.stack}.json"))
        assert len(files) == 1, files
        return files[0].read_text()

    def resources(self, type_suffix: str = "ByoiInstallation") -> dict[str, dict[str, Any]]:
        """The state's resources whose type ends with `type_suffix`, by name."""
        deployment = self.export()["deployment"]
        return {
            resource["urn"].rsplit("::", 1)[1]: resource
            for resource in deployment.get("resources", [])
            if resource["type"].endswith(type_suffix)
        }

    def urn(self, name: str) -> str:
        """The URN of the resource `name` in the stack's state."""
        urns = [urn for urn in self.urns() if urn.rsplit("::", 1)[1] == name]
        assert len(urns) == 1, (name, urns)
        return urns[0]

    def urns(self) -> list[str]:
        return [resource["urn"] for resource in self.export()["deployment"].get("resources", [])]

    def shell(self, script: str) -> Run:
        """Runs shell commands (`pulumi config set ...` as a README shows them) in the project; `stack init`
        selected this stack."""
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.project,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        run = Run(("(shell)", script), done.returncode, done.stdout)
        if run.returncode != 0:
            raise CliError(f"expected exit 0:\n{run}")
        return run

    def outputs(self) -> dict[str, Any]:
        outputs: dict[str, Any] = json.loads(self.run("stack", "output", "--json", "--show-secrets").output)
        return outputs

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`pulumi ARGS` started in its own process group, for a test that interrupts it."""
        return subprocess.Popen(
            [str(PULUMI), *args, "--non-interactive", "--stack", self.stack],
            cwd=self.project,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    @staticmethod
    def kill(process: subprocess.Popen[str], signum: signal.Signals = signal.SIGKILL) -> str:
        """Sends `signum` to the CLI and every process under it (language host, program, providers), as a
        dead CI runner does to its job; returns what the CLI had printed."""
        # The CLI starts its plugins in process groups of their own: signalling its group alone would leave
        # the language host and the providers running, orphaned, after the test.
        family = descendants(process.pid)
        os.killpg(process.pid, signum)
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        output, _ = process.communicate(timeout=COMMAND_TIMEOUT)
        return output


def descendants(pid: int) -> list[int]:
    """The processes started, directly or not, by `pid` (read from /proc), children first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name, in parentheses, may hold spaces: the parent pid is the second field after it.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def documented_stack(source: Path, work: Path, stack: str, *, emulator: Any, **config: Any) -> PulumiStack:
    """A stack set up as its stack file documents: `pulumi stack select STACK --create` on a copy of `source`
    pointed at `emulator`, then the `pulumi config set` commands of `source/Pulumi.<stack>.yaml`'s comments
    (credentials and sensitive values as secrets); `config`: plain keys a test changes first."""
    created = PulumiStack.create(source, work, stack, emulator=emulator, config=config, secrets={})
    created.shell(documented_config_commands(source / f"Pulumi.{stack}.yaml"))
    return created


def read_until(process: subprocess.Popen[str], text: str) -> str:
    """What `process` printed up to and including the first line holding `text`; fails if it ends first."""
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if text in line:
            return "".join(lines)
    raise CliError(f"the command ended without printing {text!r}:\n{''.join(lines)}")


def documented_config_commands(path: Path) -> str:
    """The `pulumi config set` commands of the first block of commands in a stack file's comments (the
    file's own setup, not the instructions for another stack further down), as a shell script."""
    commands: list[str] = []
    continuing = False
    for line in path.read_text().splitlines():
        comment = line.lstrip().removeprefix("#") if line.lstrip().startswith("#") else None
        if comment is None or not comment.startswith("  "):
            if commands:
                break
            continue
        text = comment.strip()
        if continuing:
            commands[-1] += " " + text.removesuffix("\\").strip()
        elif text.startswith("pulumi config set "):
            commands.append(text.removesuffix("\\").strip())
        continuing = bool(commands) and text.endswith("\\")
    return "\n".join(commands)


def emulator_credentials(emulator: Any) -> dict[str, str]:
    """What a user sets with `pulumi config set [--secret] ovh:...` to point a stack at the emulator."""
    return {
        "ovh:endpoint": emulator.url,
        "ovh:applicationKey": emulator.application_key,
        "ovh:applicationSecret": emulator.application_secret,
        "ovh:consumerKey": emulator.consumer_key,
    }


def _is_path(key: str) -> bool:
    return any(mark in key.split(":", 1)[-1] for mark in ".[")


def _copy_project(source: Path, project: Path) -> Path:
    project.mkdir(parents=True)
    for pattern in PROJECT_FILES:
        for path in source.glob(pattern):
            shutil.copy2(path, project / path.name)
    _use_this_virtualenv(project / "Pulumi.yaml")
    return project


def _environment(work: Path, time_scale: float, env: Mapping[str, str] | None) -> dict[str, str]:
    """The CLI's environment: this virtualenv's tools, state and settings of the test's own."""
    return {
        **os.environ,
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(work / "pulumi-home"),
        "PULUMI_BACKEND_URL": f"file://{work / 'backend'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        # The provider waits in step with the emulator's compressed clock, and journals in the test's
        # folder (never in the machine's real journal).
        "OVH_BYOI_TIME_SCALE": f"{time_scale:g}",
        "OVH_BYOI_JOURNAL": str(work / "journal" / "reinstalls.sqlite"),
        **(env or {}),
    }


def _use_this_virtualenv(pulumi_yaml: Path) -> None:
    """The copy's `virtualenv` option is relative to the original project folder: point it at this one."""
    document = yaml.safe_load(pulumi_yaml.read_text())
    document.setdefault("runtime", {"name": "python"})
    if isinstance(document["runtime"], str):
        document["runtime"] = {"name": document["runtime"]}
    document["runtime"].setdefault("options", {})["virtualenv"] = str(VENV)
    pulumi_yaml.write_text(yaml.safe_dump(document, sort_keys=False))
