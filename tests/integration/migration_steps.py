"""Building a database as it was before a migration, for the tests of that migration."""

from __future__ import annotations

from chatapp.storage import Migration


def migrations_before(migrations: list[Migration], name: str) -> list[Migration]:
    """The migrations a database had before the one called `name` existed."""
    names = [migration.name for migration in migrations]
    return migrations[: names.index(name)]
