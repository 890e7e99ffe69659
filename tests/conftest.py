import pytest
from django.db import connection


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"
