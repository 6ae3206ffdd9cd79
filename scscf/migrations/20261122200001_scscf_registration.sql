-- S-CSCF registration state (TS 24.229 §5.4.1.2): one row per implicit registration set,
-- its shared contact bindings, and reg-event subscription dialogs (RFC 3680 / RFC 6665).
-- Plain SQL that SQLite and PostgreSQL both accept.
CREATE TABLE IF NOT EXISTS scscf_registration (
    id TEXT PRIMARY KEY,
    impi TEXT NOT NULL,
    impus TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS scscf_contact (
    registration_id TEXT NOT NULL,
    contact_key TEXT NOT NULL,
    uri TEXT NOT NULL,
    params TEXT NOT NULL,
    instance TEXT,
    reg_id BIGINT,
    expires_at BIGINT NOT NULL,
    path TEXT NOT NULL,
    call_id TEXT NOT NULL,
    cseq BIGINT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (registration_id, contact_key)
);

CREATE TABLE IF NOT EXISTS scscf_subscription (
    id TEXT PRIMARY KEY,
    aor TEXT NOT NULL,
    call_id TEXT NOT NULL,
    local_tag TEXT NOT NULL,
    remote_tag TEXT NOT NULL,
    local_uri TEXT NOT NULL,
    remote_uri TEXT NOT NULL,
    remote_target TEXT NOT NULL,
    route_set TEXT NOT NULL,
    local_cseq BIGINT NOT NULL,
    version BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
