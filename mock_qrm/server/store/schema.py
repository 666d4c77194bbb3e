"""The schema, as numbered migrations applied in order (tracked in `user_version`).

Times are epoch milliseconds. Ids are allocated by the process (it is the only
writer), which lets the writer batch inserts without reading ids back.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: webhooks, reports, events, deliveries, attempts
    """
    CREATE TABLE webhooks (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL,
        url           TEXT NOT NULL,
        events        TEXT NOT NULL,            -- JSON array of event codes
        auth_username TEXT,
        auth_password TEXT,
        active        INTEGER NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        deleted_at    INTEGER                   -- removed webhooks keep their history
    );

    CREATE TABLE reports (
        id                INTEGER PRIMARY KEY,
        inspection_id     TEXT NOT NULL UNIQUE,
        status            TEXT NOT NULL,
        case_number       TEXT NOT NULL,
        inspection_type   TEXT NOT NULL,
        result            TEXT NOT NULL,
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL,
        system_updated_at INTEGER NOT NULL,
        inspection_date   INTEGER,
        file_ready_at     INTEGER,
        document          TEXT NOT NULL         -- the ReportResponse JSON, without pdfUrl
    );
    CREATE INDEX reports_by_created ON reports (created_at, id);

    CREATE TABLE events (
        id          INTEGER PRIMARY KEY,
        event_code  TEXT NOT NULL,
        resource_id INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        due_at      INTEGER NOT NULL,
        emitted_at  INTEGER                     -- NULL until fanned out to webhooks
    );
    CREATE INDEX events_pending ON events (due_at) WHERE emitted_at IS NULL;

    CREATE TABLE deliveries (
        id               INTEGER PRIMARY KEY,
        message_id       TEXT NOT NULL UNIQUE,
        event_id         INTEGER NOT NULL,
        webhook_id       INTEGER NOT NULL,
        event_code       TEXT NOT NULL,
        resource_id      INTEGER NOT NULL,
        status           TEXT NOT NULL,
        attempt_count    INTEGER NOT NULL DEFAULT 0, -- completed automatic attempts (n of 4)
        attempts_total   INTEGER NOT NULL DEFAULT 0, -- journal rows, for numbering
        next_attempt_at  INTEGER,
        created_at       INTEGER NOT NULL,
        completed_at     INTEGER,
        message          TEXT NOT NULL,         -- the JSON body, byte for byte as sent
        last_status      INTEGER,
        last_error       TEXT,
        last_duration_ms INTEGER
    );
    -- The journal filters on any mix of webhook, state and event, newest first, at a
    -- million rows: one index per combination, each ending in id so it is already in order.
    -- A time range becomes an id range (ids grow with creation time) through by_created.
    CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, id);
    CREATE INDEX deliveries_by_status ON deliveries (status, id);
    CREATE INDEX deliveries_by_event ON deliveries (event_code, id);
    CREATE INDEX deliveries_by_webhook_status ON deliveries (webhook_id, status, id);
    CREATE INDEX deliveries_by_status_event ON deliveries (status, event_code, id);
    CREATE INDEX deliveries_by_webhook_event ON deliveries (webhook_id, event_code, id);
    CREATE INDEX deliveries_by_all ON deliveries (webhook_id, status, event_code, id);
    CREATE INDEX deliveries_by_created ON deliveries (created_at, id);
    CREATE INDEX deliveries_by_resource ON deliveries (resource_id, id);
    CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
        WHERE status IN ('pending', 'retry_scheduled');

    CREATE TABLE attempts (
        id                 INTEGER PRIMARY KEY,
        delivery_id        INTEGER NOT NULL,
        number             INTEGER NOT NULL,
        trigger            TEXT NOT NULL,
        started_at         INTEGER NOT NULL,
        duration_ms        INTEGER,
        url                TEXT NOT NULL,
        request_headers    TEXT NOT NULL,
        request_body       TEXT NOT NULL,
        response_status    INTEGER,
        response_headers   TEXT,
        response_body      TEXT,
        response_truncated INTEGER NOT NULL DEFAULT 0,
        error              TEXT,
        outcome            TEXT                 -- NULL while in flight
    );
    CREATE INDEX attempts_by_delivery ON attempts (delivery_id, number);
    CREATE INDEX attempts_in_flight ON attempts (delivery_id) WHERE outcome IS NULL;
    """,
    # 2: custom headers and rate limits (SPEC.md section 8.7)
    """
    ALTER TABLE webhooks ADD COLUMN headers TEXT NOT NULL DEFAULT '[]'; -- JSON [[name, value]]
    ALTER TABLE webhooks ADD COLUMN rate_limit TEXT;  -- JSON {"limit", "period"}, or NULL

    -- When each recent attempt to a webhook started, for rate limits' sliding windows
    -- (kept for the longest period, so a limit set now counts what came before it).
    CREATE TABLE rate_window (
        webhook_id INTEGER NOT NULL,
        started_at INTEGER NOT NULL
    );
    CREATE INDEX rate_window_by_webhook ON rate_window (webhook_id, started_at);
    """,
    # 3: what an error class leaves out (a TLS failure's reason, SPEC.md section 9.7)
    """
    ALTER TABLE attempts ADD COLUMN error_detail TEXT;
    ALTER TABLE deliveries ADD COLUMN last_error_detail TEXT;
    """,
    # 4: per-webhook statistics (SPEC.md section 9.6), kept as attempts end
    #
    # A webhook's stats must read in milliseconds at a million journal rows, for any
    # `since`: percentiles over a million durations cannot be sorted per request. So
    # each ended attempt is also written, in the same transaction, by triggers (the
    # writer's Python is untouched): a narrow row in `stats_attempts` by webhook and
    # start, which is counted by the minute in `stats_minutes` and in all in
    # `stats_totals`. Durations are whole milliseconds: counted per value, the
    # percentiles are exact. `store/stats.py` reads them.
    """
    CREATE TABLE stats_attempts (
        webhook_id  INTEGER NOT NULL,
        started_at  INTEGER NOT NULL,
        attempt_id  INTEGER NOT NULL,
        outcome     TEXT NOT NULL,              -- success, failure, interrupted
        result      TEXT NOT NULL,              -- the HTTP status as text, else the error class
        duration_ms INTEGER NOT NULL,           -- -1: none (an interrupted attempt)
        PRIMARY KEY (webhook_id, started_at, attempt_id)
    ) WITHOUT ROWID;

    CREATE TABLE stats_minutes (
        webhook_id  INTEGER NOT NULL,
        minute      INTEGER NOT NULL,           -- started_at / 60000
        outcome     TEXT NOT NULL,
        result      TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        attempts    INTEGER NOT NULL,
        last_at     INTEGER NOT NULL,           -- the latest start among them
        PRIMARY KEY (webhook_id, minute, duration_ms, outcome, result)  -- minutes by duration
    ) WITHOUT ROWID;

    CREATE TABLE stats_totals (
        webhook_id  INTEGER NOT NULL,
        outcome     TEXT NOT NULL,
        result      TEXT NOT NULL,
        duration_ms INTEGER NOT NULL,
        attempts    INTEGER NOT NULL,
        last_at     INTEGER NOT NULL,
        PRIMARY KEY (webhook_id, outcome, result, duration_ms)
    ) WITHOUT ROWID;

    -- An attempt ends when its outcome is set: by its result, or `interrupted` at start-up.
    CREATE TRIGGER stats_attempt_ended AFTER UPDATE OF outcome ON attempts
    WHEN OLD.outcome IS NULL AND NEW.outcome IS NOT NULL
    BEGIN
        INSERT INTO stats_attempts
        SELECT d.webhook_id, NEW.started_at, NEW.id, NEW.outcome,
               COALESCE(CAST(NEW.response_status AS TEXT), NEW.error, NEW.outcome),
               COALESCE(NEW.duration_ms, -1)
        FROM deliveries d WHERE d.id = NEW.delivery_id;
    END;

    -- An attempt journaled already ended (no writer does so today; one may).
    CREATE TRIGGER stats_attempt_ended_at_once AFTER INSERT ON attempts
    WHEN NEW.outcome IS NOT NULL
    BEGIN
        INSERT INTO stats_attempts
        SELECT d.webhook_id, NEW.started_at, NEW.id, NEW.outcome,
               COALESCE(CAST(NEW.response_status AS TEXT), NEW.error, NEW.outcome),
               COALESCE(NEW.duration_ms, -1)
        FROM deliveries d WHERE d.id = NEW.delivery_id;
    END;

    CREATE TRIGGER stats_attempt_counted AFTER INSERT ON stats_attempts
    BEGIN
        INSERT INTO stats_minutes
        VALUES (NEW.webhook_id, NEW.started_at / 60000, NEW.outcome, NEW.result,
                NEW.duration_ms, 1, NEW.started_at)
        ON CONFLICT DO UPDATE SET attempts = attempts + 1, last_at = MAX(last_at, excluded.last_at);
        INSERT INTO stats_totals
        VALUES (NEW.webhook_id, NEW.outcome, NEW.result, NEW.duration_ms, 1, NEW.started_at)
        ON CONFLICT DO UPDATE SET attempts = attempts + 1, last_at = MAX(last_at, excluded.last_at);
    END;

    -- The attempts that ended before this migration.
    INSERT INTO stats_attempts
    SELECT d.webhook_id, a.started_at, a.id, a.outcome,
           COALESCE(CAST(a.response_status AS TEXT), a.error, a.outcome),
           COALESCE(a.duration_ms, -1)
    FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
    WHERE a.outcome IS NOT NULL;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

STATS_TABLES = ("stats_attempts", "stats_minutes", "stats_totals")
"""What the stats triggers keep: emptied with the journal (`journal.wipe`)."""
