"""The project's exception tree. Bad *input* is data (a Rejection / DLQ record), never one of these.

DistillGuardError
├── RulesError            the rules or allowlist file is invalid (names the file and the field)
├── StateError            a stored state value cannot be decoded (names the table and key)
└── ConfigError           a setting from the environment is unusable
"""

from __future__ import annotations


class DistillGuardError(Exception):
    """Base of every error the project raises on purpose."""


class RulesError(DistillGuardError):
    def __init__(self, path: str, field: str, message: str) -> None:
        self.path = path
        self.field = field
        self.message = message
        super().__init__(f"{path}: {field}: {message}")


class StateError(DistillGuardError):
    def __init__(self, table: str, key: str, message: str) -> None:
        self.table = table
        self.key = key
        super().__init__(f"state {table}[{key!r}]: {message}")


class ConfigError(DistillGuardError):
    pass
