"""Persisted documents: Apollo's automatic persisted queries and trusted documents.

A client sends ``extensions.persistedQuery {version: 1, sha256Hash}``. A hash the server
has not seen answers ``PersistedQueryNotFound``; the client sends hash and document, the
server checks the hash and keeps the document where every process sees it; from then on
the hash alone runs it, over POST, GET or WebSocket. In trusted-documents mode only the
documents registered ahead of time (`dinegraph trust-documents`) run at all.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    OperationDefinitionNode,
    Visitor,
    parse,
    print_ast,
    visit,
)

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_INVALID = "PERSISTED_QUERY_INVALID"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
DOCUMENT_NOT_TRUSTED = "DOCUMENT_NOT_TRUSTED"

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class StoredDocument:
    document: str
    trusted: bool


class DocumentStore(Protocol):
    async def get(self, sha256: str) -> StoredDocument | None: ...

    async def remember(self, sha256: str, document: str) -> None: ...


class PersistedQueryError(Exception):
    """A request that cannot run as sent; its ``code`` goes to ``extensions.code``."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def as_graphql_error(self) -> GraphQLError:
        return GraphQLError(self.message, extensions={"code": self.code})


def sha256_of(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


class PersistedQueries:
    """Finds the document a request runs; documents are cached per process by hash (a hash
    names one document forever, so a cached one is never stale)."""

    def __init__(self, store: DocumentStore, *, trusted_only: bool, cache_size: int = 2048):
        self._store = store
        self.trusted_only = trusted_only
        self._cache: OrderedDict[str, StoredDocument] = OrderedDict()
        self._cache_size = cache_size

    async def document_for(self, query: object, extensions: object) -> str | None:
        """The document to run for a request's ``query`` and ``extensions``."""
        persisted = extensions.get("persistedQuery") if isinstance(extensions, Mapping) else None
        if persisted is None:
            if self.trusted_only and isinstance(query, str):
                await self._require_trusted(sha256_of(query))
            return query if isinstance(query, str) else None
        sha = _requested_hash(persisted)
        if query is None:
            found = await self._find(sha)
            if found is None:
                raise PersistedQueryError("PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND)
            if self.trusted_only and not found.trusted:
                raise _not_trusted()
            return found.document
        if not isinstance(query, str):
            return None  # the view refuses a query that is not a string
        if sha256_of(query) != sha:
            raise PersistedQueryError(
                "provided sha does not match query", PERSISTED_QUERY_HASH_MISMATCH
            )
        if self.trusted_only:
            await self._require_trusted(sha)
        elif await self._find(sha) is None:
            await self._store.remember(sha, query)
            self._keep(sha, StoredDocument(query, trusted=False))
        return query

    async def _require_trusted(self, sha: str) -> None:
        found = await self._find(sha)
        if found is None or not found.trusted:
            raise _not_trusted()

    async def _find(self, sha: str) -> StoredDocument | None:
        cached = self._cache.get(sha)
        if cached is not None:
            self._cache.move_to_end(sha)
            return cached
        found = await self._store.get(sha)
        if found is not None:
            self._keep(sha, found)
        return found

    def _keep(self, sha: str, document: StoredDocument) -> None:
        self._cache[sha] = document
        self._cache.move_to_end(sha)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _requested_hash(persisted: object) -> str:
    if not isinstance(persisted, Mapping) or persisted.get("version") != 1:
        raise PersistedQueryError(
            "persistedQuery must be {version: 1, sha256Hash}", PERSISTED_QUERY_INVALID
        )
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        raise PersistedQueryError(
            "persistedQuery.sha256Hash must be 64 lowercase hex digits", PERSISTED_QUERY_INVALID
        )
    return sha


def _not_trusted() -> PersistedQueryError:
    return PersistedQueryError(
        "Only trusted documents run on this server: send the hash of a registered document",
        DOCUMENT_NOT_TRUSTED,
    )


# --- trusted documents from .graphql files ------------------------------------------------


def operations_of(source: str) -> dict[str, str]:
    """Each operation of a .graphql file as a document of its own (the operation and the
    fragments it spreads, transitively), printed canonically; by operation name."""
    document = parse(source)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    found: dict[str, str] = {}
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if definition.name is None:
            raise ValueError("every operation needs a name")
        used = _fragments_used(definition, fragments)
        single = DocumentNode(definitions=(definition, *(fragments[n] for n in sorted(used))))
        found[definition.name.value] = print_ast(single)
    return found


def _fragments_used(
    node: OperationDefinitionNode | FragmentDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> set[str]:
    used: set[str] = set()
    pending: list[OperationDefinitionNode | FragmentDefinitionNode] = [node]
    while pending:
        spreads = _Spreads()
        visit(pending.pop(), spreads)
        for name in spreads.names - used:
            if name not in fragments:
                raise ValueError(f"unknown fragment {name}")
            used.add(name)
            pending.append(fragments[name])
    return used


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: object) -> None:
        self.names.add(node.name.value)


def manifest(sources: Iterable[str]) -> dict[str, str]:
    """A persisted-documents manifest, hash → document, of every operation in ``sources``."""
    documents: dict[str, str] = {}
    for source in sources:
        for text in operations_of(source).values():
            documents[sha256_of(text)] = text
    return documents


def documents_from_files(texts: Mapping[str, str]) -> dict[str, str]:
    """Documents by hash from .graphql files (split by operation; fragments may live in any
    of the files) and .json manifests (hash → document, each hash checked)."""
    documents: dict[str, str] = {}
    graphql_sources: list[str] = []
    for name, text in texts.items():
        if not name.endswith(".json"):
            graphql_sources.append(text)
            continue
        loaded = json.loads(text)
        if not isinstance(loaded, dict):
            raise ValueError(f"{name}: a manifest is an object of hash → document")
        for sha, document in loaded.items():
            if not isinstance(document, str) or sha256_of(document) != sha:
                raise ValueError(f"{name}: {sha} is not the SHA-256 of its document")
            documents[sha] = document
    if graphql_sources:
        try:
            documents.update(manifest(["\n".join(graphql_sources)]))
        except GraphQLError as error:
            raise ValueError(error.message) from error
    return documents
