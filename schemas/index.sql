-- mosslite index file, format 1.
--
-- One file is one immutable version of one index. Plain tables are the truth
-- (readable in the sqlite3 shell with no extension); docs_fts and docs_vec are
-- derived from docs and kept in step by the triggers below, so an edit made
-- anywhere (builder, session diff applied on the service) cannot leave them
-- behind. `:dimension` is the only text substituted before this runs: DDL takes
-- no bound parameters, and the value is checked to be a positive integer first.

PRAGMA user_version = 1;

-- Key/value facts about this file: format_version, index_name, version,
-- model_id, dimension, doc_count, created_at (ISO 8601, UTC).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The documents. `rowid` is declared so VACUUM keeps it stable: docs_fts and
-- docs_vec point at it. `embedding` is float32 little-endian, L2-normalised.
CREATE TABLE docs (
    rowid     INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    text      TEXT NOT NULL,
    metadata  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    payload   TEXT,
    embedding BLOB NOT NULL CHECK (length(embedding) = 4 * :dimension)
);

-- Keyword search: FTS5 with BM25 ranking, porter stemming over unicode61 words.
CREATE VIRTUAL TABLE docs_fts USING fts5(
    text,
    content = 'docs',
    content_rowid = 'rowid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- Vector search in SQL (sqlite-vec). The reader answers from an in-memory
-- matrix (measured faster); this table is for the shell and for other tools.
CREATE VIRTUAL TABLE docs_vec USING vec0(
    embedding float[:dimension] distance_metric=cosine
);

CREATE TRIGGER docs_after_insert AFTER INSERT ON docs BEGIN
    INSERT INTO docs_fts (rowid, text) VALUES (new.rowid, new.text);
    INSERT INTO docs_vec (rowid, embedding) VALUES (new.rowid, new.embedding);
END;

CREATE TRIGGER docs_after_delete AFTER DELETE ON docs BEGIN
    INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    DELETE FROM docs_vec WHERE rowid = old.rowid;
END;

CREATE TRIGGER docs_after_update_text AFTER UPDATE OF text ON docs
WHEN old.text IS NOT new.text BEGIN
    INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO docs_fts (rowid, text) VALUES (new.rowid, new.text);
END;

CREATE TRIGGER docs_after_update_embedding AFTER UPDATE OF embedding ON docs
WHEN old.embedding IS NOT new.embedding BEGIN
    DELETE FROM docs_vec WHERE rowid = old.rowid;
    INSERT INTO docs_vec (rowid, embedding) VALUES (new.rowid, new.embedding);
END;
