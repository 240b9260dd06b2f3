"""Head office keeps the synonyms search expands a query with."""

from __future__ import annotations

from dinegraph.domain.identity import Viewer, require_catalog_editor
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.search import SetSearchSynonyms, SynonymEntry, clean_synonym_set


async def set_search_synonyms(
    cmd: SetSearchSynonyms, *, uow: UnitOfWork, viewer: Viewer
) -> SynonymEntry:
    """Replace a term's synonyms; none forgets the term. Every process's index follows."""
    require_catalog_editor(viewer)
    entry = clean_synonym_set(cmd.term, cmd.synonyms)
    async with uow:
        await uow.catalog.save_synonyms(entry, cmd.now)
        await uow.commit()
    return SynonymEntry(entry, cmd.now)
