"""Fixtures of the integration tests: an app whose clock says noon, for orders."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.context import Services
from dinegraph.settings import Settings
from tests.conftest import GraphQLClient
from tests.shop import shop_client


@pytest.fixture(scope="module")
async def shop_gql(
    settings: Settings, engine: AsyncEngine
) -> AsyncIterator[tuple[GraphQLClient, Services]]:
    """An in-process app at noon, one per test module."""
    async with shop_client(settings, engine) as client:
        yield client


@pytest.fixture
def client(shop_gql: tuple[GraphQLClient, Services]) -> GraphQLClient:
    return shop_gql[0]


@pytest.fixture
def services(shop_gql: tuple[GraphQLClient, Services]) -> Services:
    return shop_gql[1]
