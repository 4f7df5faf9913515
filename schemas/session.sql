-- mosslite session database, format 1: one file per session, in WAL mode.
--
-- `docs` is the truth and the only table SQLite's session extension records:
-- its primary key is the document id (not a rowid), because a changeset is
-- applied by primary key, and rowids mean nothing across databases. docs_fts is
-- virtual (never recorded) and kept in step by triggers, as in index.sql; the
-- service rebuilds its own FTS5 and vec0 tables from the pushed rows.
-- Every statement is idempotent so the file is (re)opened by running this.

PRAGMA user_version = 1;

-- Facts about the session: index_name, model_id, dimension (empty until known
-- for the custom model), base_version (the service version last hydrated or
-- pushed), and the outgoing diff while a push is in flight.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The session's documents, with their embeddings (float32 little-endian,
-- L2-normalised), in the same column order and encoding as an index file.
-- The implicit rowid only links docs_fts; the session file is never VACUUMed,
-- so it stays stable.
CREATE TABLE IF NOT EXISTS docs (
    id        TEXT PRIMARY KEY NOT NULL,
    text      TEXT NOT NULL,
    metadata  TEXT NOT NULL DEFAULT '{}',
    payload   TEXT,
    embedding BLOB NOT NULL
);

-- One changeset per committed write since the last successful push, written in
-- the same transaction as the write itself: what returned is what gets pushed.
CREATE TABLE IF NOT EXISTS pending_changes (
    seq       INTEGER PRIMARY KEY,
    changeset BLOB NOT NULL
);

CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
    text,
    content = 'docs',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER IF NOT EXISTS docs_after_insert AFTER INSERT ON docs BEGIN
    INSERT INTO docs_fts (rowid, text) VALUES (new.rowid, new.text);
END;

CREATE TRIGGER IF NOT EXISTS docs_after_delete AFTER DELETE ON docs BEGIN
    INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;

CREATE TRIGGER IF NOT EXISTS docs_after_update_text AFTER UPDATE OF text ON docs
WHEN old.text IS NOT new.text BEGIN
    INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO docs_fts (rowid, text) VALUES (new.rowid, new.text);
END;

-- The diff being pushed, kept until the service confirmed it was applied: a
-- retry after a lost answer resends it under the same diff_id (the service
-- applies each diff_id once). `upto_seq` is the last pending change it covers.
CREATE TABLE IF NOT EXISTS outgoing (
    diff_id   TEXT PRIMARY KEY,
    upto_seq  INTEGER NOT NULL,
    changeset BLOB NOT NULL
) WITHOUT ROWID;
