"""What the tools of ``mosslite mcp`` take and return: their JSON schemas.

The SDK builds each tool's input schema from its signature and its output
schema from its return type (``mcp_tools.MossTools``); the models and argument
types here carry the descriptions a model reads beside each field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from ..types import MAX_TOP_K

# -- what the tools return (their output schemas) ----------------------------------------


class Hit(BaseModel):
    id: str
    text: str
    metadata: dict[str, str]
    score: float = Field(description="Higher is better; comparable within one answer only.")


class SearchAnswer(BaseModel):
    index: str
    version: int = Field(description="The index version that served this answer.")
    stale: bool = Field(description="True when the service could not be checked: the newest copy this machine has.")
    docs: list[Hit]


class Document(BaseModel):
    id: str
    text: str
    metadata: dict[str, str]


class Documents(BaseModel):
    index: str
    docs: list[Document]
    missing: list[str] = Field(description="Ids asked for that the index does not hold.")


class IndexSummary(BaseModel):
    name: str
    version: int
    doc_count: int
    model: str
    updated_at: str


class Indexes(BaseModel):
    indexes: list[IndexSummary]


class JobAnswer(BaseModel):
    job_id: str
    index: str
    doc_count: int = Field(description="Documents the job was given.")
    status: str = Field(description="completed, or the status when the call returned (wait=false).")
    version: int | None = Field(description="The index version the job published, once completed.")


class Remembered(BaseModel):
    session: str
    id: str
    doc_count: int = Field(description="Documents the session holds now.")
    pending_changes: int = Field(description="Writes not pushed yet (push_session sends them).")


class RecallAnswer(BaseModel):
    session: str
    docs: list[Hit]


class PushAnswer(BaseModel):
    session: str
    job_id: str = Field(description='"" when there was nothing to push.')
    doc_count: int = Field(description="Documents the push changed.")
    status: str
    version: int | None
    overwritten: int | None = Field(description="Documents another agent had changed that this push replaced.")


# -- what the tools take (their input schemas) -------------------------------------------

FILTER_HELP = (
    'A metadata filter, e.g. {"field": "category", "condition": {"$eq": "returns"}}; '
    'combine with {"$and": [...]} or {"$or": [...]}. Operators: $eq $ne $in $nin (strings), '
    '$gt $gte $lt $lte (numbers, or ISO dates as strings), $near ("lat,lng,radius_m"). Metadata values are strings.'
)


class DocumentIn(BaseModel):
    id: str = Field(description="Unique within the index; an existing id is replaced when upsert is true.")
    text: str
    metadata: dict[str, str] | None = Field(default=None, description='String values only, e.g. {"price": "9.99"}.')


IndexArg = Annotated[str, Field(description="The index's name (list_indexes names them).")]
SessionArg = Annotated[
    str, Field(description="The session's name, e.g. one per conversation; push_session publishes it as the index of that name.")
]
QueryArg = Annotated[str, Field(description="What to look for, in words.")]
TopKArg = Annotated[int, Field(description=f"How many results, 1 to {MAX_TOP_K}.")]
AlphaArg = Annotated[float, Field(description="1.0 by meaning only, 0.0 by keywords only, between: both.")]
FilterArg = Annotated[dict[str, Any] | None, Field(description=FILTER_HELP)]
IdsArg = Annotated[list[str], Field(description="Document ids.")]
NoteArg = Annotated[str, Field(description="What to remember, as a self-contained sentence or note.")]
MetadataArg = Annotated[dict[str, str] | None, Field(description="String values only, to filter on later.")]
NoteIdArg = Annotated[str | None, Field(description="An id to write over an earlier note; a new one is made if omitted.")]
DocumentsArg = Annotated[list[DocumentIn], Field(description="The documents: {id, text, metadata?} each.")]
UpsertArg = Annotated[bool, Field(description="Replace documents whose id exists; if false, an existing id is an error.")]
WaitArg = Annotated[bool, Field(description="Wait until the job has published a new version (and the next search sees it).")]


__all__ = [
    "AlphaArg",
    "Document",
    "DocumentIn",
    "Documents",
    "DocumentsArg",
    "FILTER_HELP",
    "FilterArg",
    "Hit",
    "IdsArg",
    "IndexArg",
    "IndexSummary",
    "Indexes",
    "JobAnswer",
    "MetadataArg",
    "NoteArg",
    "NoteIdArg",
    "PushAnswer",
    "QueryArg",
    "RecallAnswer",
    "Remembered",
    "SearchAnswer",
    "SessionArg",
    "TopKArg",
    "UpsertArg",
    "WaitArg",
]
