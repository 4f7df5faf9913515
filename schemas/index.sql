-- mosslite index file, format 2.
--
-- One file is one immutable version of one index. Plain tables are the truth
-- (readable in the sqlite3 shell with no extension); docs_fts and docs_vec are
-- derived from docs and kept in step by the triggers below, so no edit can
-- leave them behind. docs_postings and docs_tokens are derived too, by the
-- builder (mosslite/index/postings.py: a trigger cannot run a tokenizer); the
-- builder is the only writer of published files. `:dimension` is the only text
-- substituted before this runs: DDL takes no bound parameters, and the value is
-- checked to be a positive integer first.
--
-- Format history: 2 added docs_postings and docs_tokens (BM25 in memory).

-- A docs row (a 384-dim embedding is 1,536 bytes, plus text and metadata) is
-- ~2 KB: 4 KB pages hold one and waste the rest; 8 KB pages made a 10k-doc
-- file 14% smaller (less to copy, hash and download per version). Must come
-- first: it only takes effect before anything is written to the file.
PRAGMA page_size = 8192;

PRAGMA user_version = 2;

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

-- The same words as docs_fts, as posting lists the reader scores BM25 from in
-- numpy (exactly FTS5's bm25(), reading only the query's terms): for each term,
-- the rowids of the docs holding it (uint32 little-endian, ascending) and how
-- often (uint16 little-endian, same order, saturated at 65535).
CREATE TABLE docs_postings (
    term   TEXT PRIMARY KEY,
    rowids BLOB NOT NULL,
    counts BLOB NOT NULL CHECK (2 * length(counts) = length(rowids))
);

-- Tokens per document: BM25's document length.
CREATE TABLE docs_tokens (
    rowid  INTEGER PRIMARY KEY,
    tokens INTEGER NOT NULL
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
