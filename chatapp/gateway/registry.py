"""Which connections are live, by user and by device."""

from __future__ import annotations

from chatapp.gateway.connection import Connection


class ConnectionRegistry:
    def __init__(self) -> None:
        self._by_user: dict[int, dict[str, Connection]] = {}

    def add(self, connection: Connection) -> None:
        self._by_user.setdefault(connection.user_id, {})[connection.id] = connection

    def remove(self, connection: Connection) -> None:
        connections = self._by_user.get(connection.user_id)
        if connections is None:
            return
        connections.pop(connection.id, None)
        if not connections:
            del self._by_user[connection.user_id]

    def of_user(self, user_id: int) -> tuple[Connection, ...]:
        # A copy, so that connections may come and go while a caller goes through them.
        connections = self._by_user.get(user_id)
        return tuple(connections.values()) if connections else ()

    def of_device(self, user_id: int, device_id: int) -> list[Connection]:
        return [c for c in self.of_user(user_id) if c.device_id == device_id]

    def has_user(self, user_id: int) -> bool:
        return user_id in self._by_user

    def all(self) -> list[Connection]:
        return [c for connections in self._by_user.values() for c in connections.values()]

    def __len__(self) -> int:
        return sum(len(connections) for connections in self._by_user.values())
