"""Serving 猜你喜欢 from the precomputed model: the model cached per process by version, a
member's (or device's) profile cached briefly, nothing built on the request path."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from dinegraph.domain.behaviour import Actor
from dinegraph.domain.catalog import Category, Product
from dinegraph.domain.recommendation_blend import (
    BLEND,
    Blend,
    Profile,
    Recommended,
    Request,
    profile_of,
    recommend,
)
from dinegraph.domain.recommendations import (
    Basket,
    Interaction,
    Model,
    Scene,
    product_features,
)

EMPTY_MODEL = Model(neighbours={}, popularity={})


class RecommendationSource(Protocol):
    """Where the model and histories are read from (db/recommendations.py)."""

    async def current_version(self) -> int | None: ...

    async def load_model(self, version: int) -> Model: ...

    async def history_of(
        self, actor: Actor, now: datetime
    ) -> tuple[list[Basket], list[Interaction]]: ...


class Recommender:
    """One per process. The newest model version is looked up at most every
    ``version_check`` seconds and loaded once per version; a profile is kept
    ``profile_ttl`` seconds per member or device, at most ``max_profiles`` of them."""

    def __init__(
        self, *, version_check: float = 10.0, profile_ttl: float = 60.0, max_profiles: int = 5000
    ) -> None:
        self.version_check = version_check
        self.profile_ttl = profile_ttl
        self.max_profiles = max_profiles
        self._version: int | None = None
        self._model = EMPTY_MODEL
        self._checked_at = -float("inf")
        self._profiles: OrderedDict[str, tuple[float, Profile]] = OrderedDict()
        self._lock: asyncio.Lock | None = None

    async def model(self, source: RecommendationSource) -> Model:
        """The newest ready model. Requests that arrive while it is looked up or loaded wait
        for it (one lookup, one load), rather than rank with the one before, or with nothing
        on a new server."""
        if time.monotonic() - self._checked_at < self.version_check:
            return self._model
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if time.monotonic() - self._checked_at < self.version_check:
                return self._model  # looked up while this request waited
            version = await source.current_version()
            if version is not None and version != self._version:
                self._model = await source.load_model(version)
                self._version = version
            self._checked_at = time.monotonic()
        return self._model

    @property
    def version(self) -> int | None:
        return self._version

    async def profile(
        self, source: RecommendationSource, actor: Actor, now: datetime, *, fresh: bool = False
    ) -> Profile:
        """The actor's profile, from the cache unless ``fresh`` (read again and kept)."""
        key = actor.key
        held = self._profiles.get(key)
        if not fresh and held is not None and time.monotonic() - held[0] < self.profile_ttl:
            self._profiles.move_to_end(key)
            return held[1]
        baskets, interactions = await source.history_of(actor, now)
        profile = profile_of(baskets, interactions, now)
        self._profiles[key] = (time.monotonic(), profile)
        self._profiles.move_to_end(key)
        while len(self._profiles) > self.max_profiles:
            self._profiles.popitem(last=False)
        return profile

    def forget(self, actor: Actor) -> None:
        """The actor's history changed (cleared, merged): read it afresh next time."""
        self._profiles.pop(actor.key, None)

    def histories_changed(self, member_id: int | None, device_id: str | None) -> None:
        """Events were recorded for a member or a device, or a device's were taken over by
        the member: each history is read afresh next time."""
        if member_id is not None:
            self.forget(Actor(member_id, None))
        if device_id is not None:
            self.forget(Actor(None, device_id))


async def recommend_for(
    request: Request,
    *,
    actor: Actor | None,
    source: RecommendationSource,
    recommender: Recommender,
    available: Mapping[int, Product],
    categories: Mapping[int, Category],
    now: datetime,
    blend: Blend = BLEND,
) -> list[Recommended]:
    """Recommendations for a member, a device, or nobody (popularity and context alone).

    The page after an order reads the history afresh: a profile kept from before the order
    would not know the order it follows."""
    model = await recommender.model(source)
    fresh = request.scene is Scene.ORDER_DONE
    profile = (
        await recommender.profile(source, actor, now, fresh=fresh)
        if actor is not None
        else Profile()
    )
    features = {p.id: product_features(p, categories) for p in available.values()}
    if request.product_id is not None and request.product_id not in features:
        features[request.product_id] = frozenset()
    return recommend(request, model, profile, available, features, blend=blend)
