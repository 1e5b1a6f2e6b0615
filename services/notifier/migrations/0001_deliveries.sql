-- Status-callback deliveries: one row per event that asked for a callback.
-- Rows with the same ordering_key (resource SID + URL) are delivered strictly in `sequence` order.
CREATE TABLE deliveries (
    id                bigserial PRIMARY KEY,
    event_id          uuid        NOT NULL UNIQUE,
    event_type        text        NOT NULL,
    account_sid       text        NOT NULL,
    url               text        NOT NULL,
    host              text        NOT NULL,
    method            text        NOT NULL CHECK (method IN ('GET', 'POST')),
    params            jsonb       NOT NULL,
    ordering_key      text        NOT NULL,
    sequence          bigint      NOT NULL,
    state             text        NOT NULL DEFAULT 'pending'
                                  CHECK (state IN ('pending', 'delivering', 'delivered', 'dead')),
    attempts          integer     NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    lease_until       timestamptz,
    claim_token       uuid,
    window_started_at timestamptz NOT NULL DEFAULT now(),
    last_status       integer,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    dead_at           timestamptz,
    UNIQUE (ordering_key, sequence)
);

-- The dispatcher's claim query walks only undelivered rows, per key in sequence order.
CREATE INDEX deliveries_undelivered ON deliveries (ordering_key, sequence)
    WHERE state IN ('pending', 'delivering');
CREATE INDEX deliveries_state_created ON deliveries (state, created_at);
CREATE INDEX deliveries_account ON deliveries (account_sid, created_at);

