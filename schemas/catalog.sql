-- mosslite service catalog: which projects, keys, indexes, versions and jobs exist.
-- Opened in WAL mode; publishing a version is one transaction over these tables.

-- 2: keys are stored as HMACs (issue #8); catalog.py migrates version 1.
PRAGMA user_version = 2;

CREATE TABLE IF NOT EXISTS projects (
    project_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
) WITHOUT ROWID;

-- Only HMAC-SHA256(secret, key) is stored, the secret in catalog.secret beside
-- this file: a copied catalog reveals no key, not even a short one (service/keys.py).
-- scheme: 'hmac-sha256', or 'sha256' for a key of a version-1 catalog not used since.
CREATE TABLE IF NOT EXISTS project_keys (
    key_hash   TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
    scheme     TEXT NOT NULL,
    created_at TEXT NOT NULL
) WITHOUT ROWID;

-- status: 'building' until its first version is published, then 'ready';
-- a failed first build leaves it 'failed'.
-- public: 1 in public read mode (service/public.py, issue #10). A catalog made
-- before the column existed gets it when it is opened (catalog.py).
CREATE TABLE IF NOT EXISTS indexes (
    project_id TEXT NOT NULL REFERENCES projects (project_id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    model_id   TEXT NOT NULL,
    dimension  INTEGER NOT NULL,
    status     TEXT NOT NULL,
    version    INTEGER NOT NULL DEFAULT 0,
    doc_count  INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    public     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS versions (
    project_id  TEXT NOT NULL,
    index_name  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    doc_count   INTEGER NOT NULL,
    model_id    TEXT NOT NULL,
    dimension   INTEGER NOT NULL,
    storage_key TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (project_id, index_name, version),
    FOREIGN KEY (project_id, index_name) REFERENCES indexes (project_id, name) ON DELETE CASCADE
) WITHOUT ROWID;

-- A job's documents and ids are not kept here: they wait in a batch file of
-- their own (`batches/<job_id>.sqlite`, mosslite/index/batch.py) until the job
-- ends, so a progress update rewrites a small row and the catalog does not
-- grow with the documents it has seen (issue #7). A service that crashed
-- mid-build runs the job again from that file at its next start.
CREATE TABLE IF NOT EXISTS jobs (
    job_id        TEXT PRIMARY KEY,
    project_id    TEXT NOT NULL,
    index_name    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    status        TEXT NOT NULL,
    current_phase TEXT,
    progress      REAL NOT NULL DEFAULT 0,
    error         TEXT,
    doc_count     INTEGER NOT NULL DEFAULT 0,
    version       INTEGER,
    owner         TEXT,
    seq           INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    completed_at  TEXT
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS jobs_by_index ON jobs (project_id, index_name, seq);
CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (status) WHERE status NOT IN ('completed', 'failed');

-- Session pushes, by the diff id the client gave each diff: a retried push
-- returns the job of the first (issue #5). `overwritten` (ids whose row on the
-- service was not the one the session had seen, replaced by last-push-wins) is
-- counted by the build that applies the diff and stored when it is published,
-- with the job's completion (issue #7): the changeset itself is not kept, and
-- a retry long after, when that version is gone, still gets its answer.
CREATE TABLE IF NOT EXISTS pushes (
    project_id  TEXT NOT NULL,
    index_name  TEXT NOT NULL,
    diff_id     TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    doc_count   INTEGER NOT NULL,
    overwritten INTEGER,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (project_id, index_name, diff_id)
) WITHOUT ROWID;
