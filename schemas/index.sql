-- mosslite index file, format 3.
--
-- One file is one immutable version of one index. Plain tables are the truth
-- (readable in the sqlite3 shell with no extension); docs_fts is derived from
-- docs and kept in step by the triggers below, so no edit can leave it behind.
-- Each vector is stored once, in the sqlite-vec table docs_vec. The builder
-- (mosslite/index/builder.py) is the only writer of published files and keeps
-- everything else in step: docs_vec, the posting lists and document lengths
-- (a trigger cannot run a tokenizer), and the 8-bit codes the reader searches.
-- `:dimension` and `:chunk_size` are the only texts substituted before this
-- runs: DDL takes no bound parameters, and both are checked to be integers.
--
-- Format history: 2 added docs_postings and docs_tokens (BM25 in memory).
-- 3 (issue #7) keeps each vector once (in docs_vec, no docs.embedding), never
-- reuses a rowid, and stores what opening used to compute: document lengths
-- by rowid block, posting lists split into a base and what was added since,
-- and the rotated 8-bit codes of the vectors.

-- 4 KB pages: a version's page patch carries each page it changed whole, and
-- with no vector in a docs row, rows no longer fill 8 KB pages (adding 10
-- documents to 10k: measured smaller patches at 4 KB). Must come first.
PRAGMA page_size = 4096;

-- Free pages are given back by the builder on a fresh build (FTS5's merge into
-- one segment frees ~2% of a file), without rewriting the file as VACUUM does.
PRAGMA auto_vacuum = INCREMENTAL;

PRAGMA user_version = 3;

-- Key/value facts about this file: format_version, index_name, version,
-- model_id, dimension, doc_count, created_at (ISO 8601, UTC), and the
-- builder's bookkeeping (postings_stale_docs: documents removed since the
-- posting lists were last rewritten whole).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The documents. AUTOINCREMENT: a rowid is never used twice, so the posting
-- lists and the vector slots of a removed document can never be mistaken for
-- a later one's. An upsert that changes a document gives it a new rowid.
CREATE TABLE docs (
    rowid    INTEGER PRIMARY KEY AUTOINCREMENT,
    id       TEXT NOT NULL UNIQUE,
    text     TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata) AND json_type(metadata) = 'object'),
    payload  TEXT
);

-- Keyword search: FTS5 with BM25 ranking, porter stemming over unicode61 words.
-- columnsize=0: FTS5 keeps no second copy of docs_lengths (~10 bytes a
-- document); its bm25() counts a matching document's tokens when asked.
CREATE VIRTUAL TABLE docs_fts USING fts5(
    text,
    content = 'docs',
    content_rowid = 'rowid',
    columnsize = 0,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- The same words as docs_fts, as posting lists the reader scores BM25 from in
-- numpy (exactly FTS5's bm25(), reading only the query's terms): for each term,
-- the rowids of the docs holding it (uint32 little-endian, ascending) and how
-- often (uint16 little-endian, same order, saturated at 65535). A term's list
-- is its row here plus its row in docs_postings_recent (documents added since
-- this table was last rewritten), minus rowids no document has any more: a
-- small change then rewrites a small table, not every long list it touches.
CREATE TABLE docs_postings (
    term   TEXT PRIMARY KEY,
    rowids BLOB NOT NULL,
    counts BLOB NOT NULL CHECK (2 * length(counts) = length(rowids))
);

CREATE TABLE docs_postings_recent (
    term   TEXT PRIMARY KEY,
    rowids BLOB NOT NULL,
    counts BLOB NOT NULL CHECK (2 * length(counts) = length(rowids))
);

-- Tokens per document (BM25's document length), by rowid: `tokens` holds
-- uint32 little-endian for rowids block * 1024 .. block * 1024 + 1023.
CREATE TABLE docs_lengths (
    block  INTEGER PRIMARY KEY,
    tokens BLOB NOT NULL CHECK (length(tokens) = 4096)
);

-- The vectors (float32, L2-normalised), once: vector search in SQL with
-- sqlite-vec (`.load vec0` in the shell). The reader reads its chunks in bulk.
CREATE VIRTUAL TABLE docs_vec USING vec0(
    embedding float[:dimension] distance_metric=cosine,
    chunk_size=:chunk_size
);

-- What the reader's 8-bit search reads instead of computing it at open
-- (mosslite/index/vectors/codes.py, stored_codes.py): the rotation onto the
-- vectors' principal directions and the 8-bit step of each rotated coordinate
-- (one row)...
CREATE TABLE docs_codebook (
    rotation  BLOB NOT NULL,
    steps     BLOB NOT NULL,
    head      INTEGER NOT NULL,
    fit_count INTEGER NOT NULL
);

-- ...and, per chunk of docs_vec (same chunk_id, same slots), the rotated
-- vectors in 8 bits, three numbers per slot that bound their errors, and the
-- chunk's longest vector length.
-- Written only for indexes large enough to be searched that way.
CREATE TABLE docs_codes (
    chunk_id INTEGER PRIMARY KEY,
    codes    BLOB NOT NULL,
    stats    BLOB NOT NULL
);

CREATE TRIGGER docs_after_insert AFTER INSERT ON docs BEGIN
    INSERT INTO docs_fts (rowid, text) VALUES (new.rowid, new.text);
END;

CREATE TRIGGER docs_after_delete AFTER DELETE ON docs BEGIN
    INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;

CREATE TRIGGER docs_after_update_text AFTER UPDATE OF text ON docs
WHEN old.text IS NOT new.text BEGIN
    INSERT INTO docs_fts (docs_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO docs_fts (rowid, text) VALUES (new.rowid, new.text);
END;
