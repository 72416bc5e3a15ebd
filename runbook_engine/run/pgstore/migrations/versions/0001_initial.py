"""The first schema of the PostgreSQL store: the SQLite store's tables (schema 4) plus the
journal (append-only) and the run files (content-addressed blobs).

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_STATEMENTS = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, runbook_id TEXT NOT NULL, runbook_path TEXT NOT NULL,
    content_hash TEXT NOT NULL, env_path TEXT, env_name TEXT, env_hash TEXT,
    overrides TEXT NOT NULL DEFAULT '{}', status TEXT NOT NULL, outcome TEXT,
    operator TEXT NOT NULL, change_id TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    journal_seq INTEGER, journal_hash TEXT
);

CREATE TABLE steps (
    run_id TEXT NOT NULL REFERENCES runs(run_id), step_id TEXT NOT NULL, host TEXT NOT NULL,
    position INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER, started_at TEXT, finished_at TEXT, reason TEXT, output_digest TEXT,
    updated_at TEXT NOT NULL, pid INTEGER, pid_start BIGINT, pgid INTEGER, marker TEXT,
    PRIMARY KEY (run_id, step_id, host)
);

CREATE TABLE gates (
    run_id TEXT NOT NULL REFERENCES runs(run_id), step_id TEXT NOT NULL, host TEXT NOT NULL,
    decision TEXT NOT NULL, by TEXT NOT NULL, note TEXT, source TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (run_id, step_id, host)
);

CREATE TABLE journal (
    run_id TEXT NOT NULL REFERENCES runs(run_id), seq INTEGER NOT NULL CHECK (seq > 0),
    hash TEXT NOT NULL, prev TEXT NOT NULL, line TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, size BIGINT NOT NULL, data BYTEA NOT NULL);

CREATE TABLE run_files (
    run_id TEXT NOT NULL REFERENCES runs(run_id), path TEXT NOT NULL,
    sha256 TEXT NOT NULL REFERENCES blobs(sha256), PRIMARY KEY (run_id, path)
);

CREATE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only: records are never changed or deleted';
END $$;

CREATE TRIGGER journal_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON journal
    FOR EACH STATEMENT EXECUTE FUNCTION journal_append_only();
"""


def upgrade() -> None:
    """Create the tables, and the trigger that keeps the journal append-only."""
    for statement in _STATEMENTS.split("\n\n"):
        op.execute(statement)


def downgrade() -> None:
    """Drop everything (the evidence with it): only for a test database."""
    op.execute("DROP TABLE run_files, blobs, journal, gates, steps, runs")
    op.execute("DROP FUNCTION journal_append_only()")
