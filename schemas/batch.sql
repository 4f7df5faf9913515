-- mosslite batch file: the changes one job applies to an index (issue #7).
--
-- Written once where a mutation enters the service (or by build_version for
-- its caller's lists), read by the builder, deleted when the job ends. Vectors
-- are float32 blobs, not JSON numbers: a batch costs what its documents cost,
-- and a 1M-document batch streams through without being held in memory.

PRAGMA user_version = 1;

-- Documents to add or replace, in the order given. `metadata` is the stored
-- JSON text; `embedding` float32 little-endian, L2-normalised, or NULL: the
-- builder reuses the stored vector of an unchanged text, or embeds the text.
CREATE TABLE IF NOT EXISTS upserts (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    text      TEXT NOT NULL,
    metadata  TEXT NOT NULL,
    payload   TEXT,
    embedding BLOB
);

-- Ids to remove (missing ids are ignored).
CREATE TABLE IF NOT EXISTS deletes (
    id TEXT PRIMARY KEY
) WITHOUT ROWID;

-- A session push only: the row each changed document had when the session
-- last saw it (all NULL: the session saw none), to count what the push
-- overwrote of other writers' changes.
CREATE TABLE IF NOT EXISTS seen (
    id        TEXT PRIMARY KEY,
    text      TEXT,
    metadata  TEXT,
    payload   TEXT,
    embedding BLOB
) WITHOUT ROWID;

-- What the batch is for: kind (create_index, add_docs, delete_docs, push),
-- index, model_id, dimension, upsert (1 or 0).
CREATE TABLE IF NOT EXISTS facts (
    key   TEXT PRIMARY KEY,
    value ANY
) WITHOUT ROWID;
