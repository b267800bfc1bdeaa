"""The emulator's state in SQLite: servers, tasks and installs, so that they survive a restart.

All access happens on the event loop's thread; each statement is short, so SQLite never holds the loop up for
long. A file-backed store uses WAL so that a crash loses at most the statement being written.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FIRST_TASK_ID", "Install", "Server", "Step", "Store", "Task"]

FIRST_TASK_ID = 4_200_001
ACTIVE_TASK_STATUSES = ("init", "todo", "doing")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS servers (
    service_name TEXT PRIMARY KEY,
    server_id INTEGER NOT NULL UNIQUE,
    disk_size INTEGER NOT NULL,
    memory_size INTEGER NOT NULL,
    boot_mode TEXT NOT NULL,
    os TEXT NOT NULL,
    disk_sha256 TEXT,
    efi_bootloader_path TEXT,
    config_drive TEXT,
    disk_groups TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id INTEGER PRIMARY KEY,
    service_name TEXT NOT NULL REFERENCES servers(service_name),
    function TEXT NOT NULL,
    status TEXT NOT NULL,
    comment TEXT,
    start_date REAL NOT NULL,
    done_date REAL,
    last_update REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_server ON tasks(service_name, task_id);
CREATE TABLE IF NOT EXISTS installs (
    task_id INTEGER PRIMARY KEY REFERENCES tasks(task_id),
    service_name TEXT NOT NULL,
    operating_system TEXT NOT NULL,
    out_of_band INTEGER NOT NULL,
    customizations TEXT NOT NULL,
    steps TEXT NOT NULL,
    step_index INTEGER NOT NULL,
    step_started REAL,
    fault TEXT,
    written_sha256 TEXT,
    progress_visible INTEGER NOT NULL DEFAULT 1,
    disk_group_id INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS installs_by_server ON installs(service_name, task_id);
CREATE TABLE IF NOT EXISTS server_settings (
    service_name TEXT PRIMARY KEY REFERENCES servers(service_name),
    settings TEXT NOT NULL
);
"""


@dataclass
class Server:
    service_name: str
    server_id: int
    disk_size: int
    memory_size: int
    boot_mode: str
    os: str
    disk_sha256: str | None = None
    efi_bootloader_path: str | None = None
    config_drive: dict[str, Any] | None = None
    # [{"numberOfDisks": n, "diskSize": bytes of one disk, "diskType": "NVMe"}, ...], group ids 1, 2, ...;
    # None: one group of one disk of `disk_size`.
    disk_groups: list[dict[str, Any]] | None = None

    @property
    def groups(self) -> list[dict[str, Any]]:
        return self.disk_groups or [{"numberOfDisks": 1, "diskSize": self.disk_size, "diskType": "NVMe"}]

    def first_disk_of(self, disk_group_id: int) -> int | None:
        """Bytes of the first disk of a disk group (0: automatic, which is group 1), None if no such group."""
        index = max(disk_group_id, 1) - 1
        return int(self.groups[index]["diskSize"]) if index < len(self.groups) else None


@dataclass
class Task:
    task_id: int
    service_name: str
    function: str
    status: str
    comment: str | None
    start_date: float
    done_date: float | None
    last_update: float

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_TASK_STATUSES


@dataclass
class Step:
    comment: str
    status: str = "todo"
    error: str | None = None


@dataclass
class Install:
    task_id: int
    service_name: str
    operating_system: str
    out_of_band: bool
    customizations: dict[str, Any]
    steps: list[Step]
    step_index: int = 0
    step_started: float | None = None
    fault: str | None = None
    written_sha256: str | None = None
    progress_visible: bool = True
    disk_group_id: int = 0


class Store:
    def __init__(self, path: Path | None) -> None:
        self._db = sqlite3.connect(":memory:" if path is None else str(path), isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(servers)")}
        if "disk_groups" not in columns:
            # A state file written before servers had disk groups.
            self._db.execute("ALTER TABLE servers ADD COLUMN disk_groups TEXT")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(installs)")}
        if "disk_group_id" not in columns:
            self._db.execute("ALTER TABLE installs ADD COLUMN disk_group_id INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self._db.close()

    # servers

    def add_server(self, server: Server) -> None:
        self._db.execute(
            "INSERT INTO servers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                server.service_name,
                server.server_id,
                server.disk_size,
                server.memory_size,
                server.boot_mode,
                server.os,
                server.disk_sha256,
                server.efi_bootloader_path,
                None if server.config_drive is None else json.dumps(server.config_drive),
                None if server.disk_groups is None else json.dumps(server.disk_groups),
            ),
        )

    def update_server(self, server: Server) -> None:
        self._db.execute(
            "UPDATE servers SET os=?, disk_sha256=?, efi_bootloader_path=?, config_drive=? "
            "WHERE service_name=?",
            (
                server.os,
                server.disk_sha256,
                server.efi_bootloader_path,
                None if server.config_drive is None else json.dumps(server.config_drive),
                server.service_name,
            ),
        )

    @staticmethod
    def _server(row: sqlite3.Row) -> Server:
        values = dict(row)
        values["config_drive"] = None if row["config_drive"] is None else json.loads(row["config_drive"])
        values["disk_groups"] = None if row["disk_groups"] is None else json.loads(row["disk_groups"])
        return Server(**values)

    def server(self, service_name: str) -> Server | None:
        row = self._db.execute("SELECT * FROM servers WHERE service_name=?", (service_name,)).fetchone()
        return None if row is None else self._server(row)

    def set_efi_bootloader_path(self, service_name: str, path: str | None) -> None:
        # One column: the rest of the row may be an install's to write meanwhile.
        self._db.execute(
            "UPDATE servers SET efi_bootloader_path=? WHERE service_name=?", (path, service_name)
        )

    def server_settings(self, service_name: str) -> dict[str, Any]:
        """What `PUT /dedicated/server/{sn}` changed (bootId, monitoring, ...), by API name."""
        row = self._db.execute(
            "SELECT settings FROM server_settings WHERE service_name=?", (service_name,)
        ).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def set_server_settings(self, service_name: str, settings: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO server_settings VALUES (?, ?) "
            "ON CONFLICT(service_name) DO UPDATE SET settings=excluded.settings",
            (service_name, json.dumps(settings)),
        )

    def service_names(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT service_name FROM servers ORDER BY server_id")]

    def next_server_id(self) -> int:
        row = self._db.execute("SELECT MAX(server_id) FROM servers").fetchone()
        return 1_000_001 if row[0] is None else int(row[0]) + 1

    # tasks

    def create_task(self, service_name: str, function: str, comment: str) -> Task:
        now = time.time()
        row = self._db.execute("SELECT MAX(task_id) FROM tasks").fetchone()
        task_id = FIRST_TASK_ID if row[0] is None else int(row[0]) + 1
        task = Task(task_id, service_name, function, "init", comment, now, None, now)
        self._db.execute(
            "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (task_id, service_name, function, task.status, comment, now, None, now),
        )
        return task

    def update_task(self, task: Task) -> None:
        task.last_update = time.time()
        self._db.execute(
            "UPDATE tasks SET status=?, comment=?, done_date=?, last_update=? WHERE task_id=?",
            (task.status, task.comment, task.done_date, task.last_update, task.task_id),
        )

    def task(self, service_name: str, task_id: int) -> Task | None:
        row = self._db.execute(
            "SELECT * FROM tasks WHERE service_name=? AND task_id=?", (service_name, task_id)
        ).fetchone()
        return None if row is None else Task(**dict(row))

    def task_ids(self, service_name: str, function: str | None, status: str | None) -> list[int]:
        query = "SELECT task_id FROM tasks WHERE service_name=?"
        params: list[Any] = [service_name]
        if function is not None:
            query += " AND function=?"
            params.append(function)
        if status is not None:
            query += " AND status=?"
            params.append(status)
        return [row[0] for row in self._db.execute(query + " ORDER BY task_id", params)]

    def active_task(self, service_name: str, function: str) -> Task | None:
        row = self._db.execute(
            "SELECT * FROM tasks WHERE service_name=? AND function=? AND status IN (?, ?, ?) "
            "ORDER BY task_id DESC LIMIT 1",
            (service_name, function, *ACTIVE_TASK_STATUSES),
        ).fetchone()
        return None if row is None else Task(**dict(row))

    def active_tasks(self) -> list[Task]:
        rows = self._db.execute(
            "SELECT * FROM tasks WHERE status IN (?, ?, ?) ORDER BY task_id", ACTIVE_TASK_STATUSES
        ).fetchall()
        return [Task(**dict(row)) for row in rows]

    # installs

    def add_install(self, install: Install) -> None:
        # A new install hides the progress of the previous one on the same server.
        self._db.execute(
            "UPDATE installs SET progress_visible=0 WHERE service_name=?", (install.service_name,)
        )
        self._db.execute(
            "INSERT INTO installs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                install.task_id,
                install.service_name,
                install.operating_system,
                int(install.out_of_band),
                json.dumps(install.customizations),
                json.dumps([step.__dict__ for step in install.steps]),
                install.step_index,
                install.step_started,
                install.fault,
                install.written_sha256,
                int(install.progress_visible),
                install.disk_group_id,
            ),
        )

    def update_install(self, install: Install) -> None:
        self._db.execute(
            "UPDATE installs SET steps=?, step_index=?, step_started=?, written_sha256=?, progress_visible=? "
            "WHERE task_id=?",
            (
                json.dumps([step.__dict__ for step in install.steps]),
                install.step_index,
                install.step_started,
                install.written_sha256,
                int(install.progress_visible),
                install.task_id,
            ),
        )

    @staticmethod
    def _install(row: sqlite3.Row) -> Install:
        values = dict(row)
        values["out_of_band"] = bool(values["out_of_band"])
        values["progress_visible"] = bool(values["progress_visible"])
        values["customizations"] = json.loads(values["customizations"])
        values["steps"] = [Step(**step) for step in json.loads(values["steps"])]
        return Install(**values)

    def install(self, task_id: int) -> Install | None:
        row = self._db.execute("SELECT * FROM installs WHERE task_id=?", (task_id,)).fetchone()
        return None if row is None else self._install(row)

    def visible_install(self, service_name: str) -> Install | None:
        row = self._db.execute(
            "SELECT * FROM installs WHERE service_name=? AND progress_visible=1 "
            "ORDER BY task_id DESC LIMIT 1",
            (service_name,),
        ).fetchone()
        return None if row is None else self._install(row)

    def installs(self, service_name: str) -> list[Install]:
        rows = self._db.execute(
            "SELECT * FROM installs WHERE service_name=? ORDER BY task_id", (service_name,)
        ).fetchall()
        return [self._install(row) for row in rows]
