"""The catalog's SQL, as text: every statement ``Catalog`` runs (catalog.py), and
the one function that builds one (``update_job_sql``), kept apart from the code
that runs them so that they can be read, printed and tested on their own.

The tables are in ``schemas/catalog.sql``; ``MIGRATE_1_TO_2_SQL`` upgrades a
catalog written by version 1, ``ADD_PUBLIC_COLUMN_SQL`` one made before public
read mode. Values are ``:named`` parameters, never formatted in; the only text
formatted in is a fixed column list, or job field names that catalog.py checks
against ``JOB_FIELDS`` before ``update_job_sql`` sees them.
"""

from __future__ import annotations

INSERT_PROJECT_SQL = """
INSERT INTO projects (project_id, created_at)
VALUES (:project_id, :now)
ON CONFLICT DO NOTHING
"""

INSERT_KEY_SQL = """
INSERT INTO project_keys (key_hash, project_id, scheme, created_at)
VALUES (:key_hash, :project_id, 'hmac-sha256', :now)
ON CONFLICT DO NOTHING
"""

KEY_PROJECT_SQL = """
SELECT project_id
FROM project_keys
WHERE key_hash = :key_hash AND scheme = :scheme
"""

REHASH_KEY_SQL = """
UPDATE project_keys
SET key_hash = :key_hash, scheme = 'hmac-sha256'
WHERE key_hash = :legacy_hash AND scheme = 'sha256'
"""

HAS_HMAC_KEYS_SQL = """
SELECT EXISTS (SELECT 1 FROM project_keys WHERE scheme = 'hmac-sha256')
"""

#: Version 1 kept each key's first six characters (the whole of a short key).
MIGRATE_1_TO_2_SQL = """
ALTER TABLE project_keys DROP COLUMN key_prefix;
ALTER TABLE project_keys ADD COLUMN scheme TEXT NOT NULL DEFAULT 'sha256';
PRAGMA user_version = 2;
"""

COUNT_KEYS_SQL = """
SELECT count(*)
FROM project_keys
WHERE project_id = :project_id
"""

LIST_KEYS_SQL = """
SELECT key_hash, scheme, created_at
FROM project_keys
WHERE project_id = :project_id
ORDER BY created_at
"""

PROJECT_EXISTS_SQL = """
SELECT 1 FROM projects WHERE project_id = :project_id
"""

INSERT_INDEX_SQL = """
INSERT INTO indexes (project_id, name, model_id, dimension, status, created_at, updated_at)
VALUES (:project_id, :name, :model_id, :dimension, 'building', :now, :now)
"""

INDEX_COLUMNS = "name, version, status, doc_count, model_id, dimension, created_at, updated_at, public"

GET_INDEX_SQL = f"""
SELECT {INDEX_COLUMNS}
FROM indexes
WHERE project_id = :project_id AND name = :name
"""

LIST_INDEXES_SQL = f"""
SELECT {INDEX_COLUMNS}
FROM indexes
WHERE project_id = :project_id
ORDER BY name
"""

DELETE_INDEX_SQL = """
DELETE FROM indexes
WHERE project_id = :project_id AND name = :name
"""

FAIL_INDEX_JOBS_SQL = """
UPDATE jobs
SET status = 'failed', error = :error, current_phase = NULL, completed_at = :now, updated_at = :now
WHERE project_id = :project_id AND index_name = :name AND status NOT IN ('completed', 'failed')
"""

SET_INDEX_PUBLIC_SQL = """
UPDATE indexes
SET public = :public, updated_at = :now
WHERE project_id = :project_id AND name = :name AND public != :public
"""

PUBLIC_INDEXES_SQL = """
SELECT project_id, name
FROM indexes
WHERE public = 1
ORDER BY project_id, name
"""

#: The column public read mode added (issue #10), for a catalog made before it.
HAS_PUBLIC_COLUMN_SQL = """
SELECT count(*)
FROM pragma_table_info('indexes')
WHERE name = 'public'
"""

ADD_PUBLIC_COLUMN_SQL = """
ALTER TABLE indexes ADD COLUMN public INTEGER NOT NULL DEFAULT 0
"""

SET_INDEX_STATUS_SQL = """
UPDATE indexes
SET status = :status, updated_at = :now
WHERE project_id = :project_id AND name = :name
"""

VERSION_COLUMNS = "index_name, version, sha256, size_bytes, doc_count, model_id, dimension, created_at"

LATEST_VERSION_SQL = f"""
SELECT {VERSION_COLUMNS}, storage_key
FROM versions
WHERE project_id = :project_id AND index_name = :name
ORDER BY version DESC
LIMIT 1
"""

GET_VERSION_SQL = f"""
SELECT {VERSION_COLUMNS}, storage_key
FROM versions
WHERE project_id = :project_id AND index_name = :name AND version = :version
"""

LIST_VERSIONS_SQL = f"""
SELECT {VERSION_COLUMNS}, storage_key
FROM versions
WHERE project_id = :project_id AND index_name = :name
ORDER BY version DESC
"""

VERSION_KEYS_SQL = """
SELECT storage_key
FROM versions
WHERE project_id = :project_id AND index_name = :name
"""

INSERT_VERSION_SQL = """
INSERT INTO versions (project_id, index_name, version, sha256, size_bytes, doc_count, model_id, dimension,
                      storage_key, created_at)
VALUES (:project_id, :index_name, :version, :sha256, :size_bytes, :doc_count, :model_id, :dimension,
        :storage_key, :created_at)
"""

PUBLISH_INDEX_SQL = """
UPDATE indexes
SET version = :version, doc_count = :doc_count, status = 'ready', updated_at = :now
WHERE project_id = :project_id AND name = :index_name
"""

JOB_COLUMNS = (
    "job_id, index_name, kind, status, current_phase, progress, error, doc_count, version, "
    "created_at, updated_at, completed_at"
)

INSERT_JOB_SQL = """
INSERT INTO jobs (job_id, project_id, index_name, kind, status, doc_count, seq, created_at, updated_at)
VALUES (:job_id, :project_id, :index_name, :kind, 'pending_upload', :doc_count,
        (SELECT coalesce(max(seq), 0) + 1 FROM jobs), :now, :now)
"""

GET_JOB_SQL = f"""
SELECT {JOB_COLUMNS}
FROM jobs
WHERE project_id = :project_id AND job_id = :job_id
"""

JOB_PROJECT_SQL = """
SELECT project_id
FROM jobs
WHERE job_id = :job_id
"""

ENDED_JOB_IDS_SQL = """
SELECT job_id
FROM jobs
WHERE job_id IN (SELECT value FROM json_each(:job_ids)) AND status IN ('completed', 'failed')
"""

UNFINISHED_JOBS_SQL = """
SELECT job_id, project_id, index_name, owner
FROM jobs
WHERE status NOT IN ('completed', 'failed')
ORDER BY seq
"""

NEXT_JOB_SQL = """
SELECT job_id
FROM jobs
WHERE project_id = :project_id AND index_name = :index_name AND status NOT IN ('completed', 'failed')
ORDER BY seq
LIMIT 1
"""


GET_PUSH_SQL = """
SELECT job_id, doc_count, overwritten
FROM pushes
WHERE project_id = :project_id AND index_name = :index_name AND diff_id = :diff_id
"""

RECORD_PUSH_SQL = """
INSERT INTO pushes (project_id, index_name, diff_id, job_id, doc_count, overwritten, created_at)
VALUES (:project_id, :index_name, :diff_id, :job_id, :doc_count, NULL, :now)
ON CONFLICT (project_id, index_name, diff_id) DO UPDATE SET
    job_id = excluded.job_id,
    doc_count = excluded.doc_count,
    overwritten = NULL,
    created_at = excluded.created_at
"""

SET_PUSH_OVERWRITTEN_SQL = """
UPDATE pushes
SET overwritten = :overwritten
WHERE project_id = :project_id AND job_id = :job_id
"""

#: The job columns ``update_job_sql`` may set.
JOB_FIELDS = frozenset({"status", "current_phase", "progress", "error", "version", "owner", "completed_at"})


def update_job_sql(fields: list[str]) -> str:
    assignments = ", ".join(f"{name} = :{name}" for name in [*fields, "updated_at"])
    return f"UPDATE jobs\nSET {assignments}\nWHERE job_id = :job_id"
