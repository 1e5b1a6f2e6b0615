-- Accounts and API keys. Secrets are stored twice: sealed (AES-GCM with MIXDOWN_MASTER_KEY, recoverable for
-- signing callbacks and verifying Access Tokens) and as a scrypt hash (for HTTP Basic checks).
CREATE TABLE accounts (
    sid                text PRIMARY KEY CHECK (sid ~ '^AC[0-9a-f]{32}$'),
    friendly_name      text NOT NULL,
    status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'closed')),
    auth_token_sealed  text NOT NULL,
    auth_token_hash    text NOT NULL,
    settings           jsonb NOT NULL DEFAULT '{}'::jsonb,
    date_created       timestamptz NOT NULL DEFAULT now(),
    date_updated       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    sid            text PRIMARY KEY CHECK (sid ~ '^SK[0-9a-f]{32}$'),
    account_sid    text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    friendly_name  text NOT NULL,
    secret_sealed  text NOT NULL,
    secret_hash    text NOT NULL,
    date_created   timestamptz NOT NULL DEFAULT now(),
    date_updated   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_account_idx ON api_keys (account_sid);
