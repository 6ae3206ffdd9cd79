-- HSS subscriber store, SQLite flavour. Keep in step with ../postgres/0001_subscribers.sql.
CREATE TABLE subscribers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    imsi        TEXT    NOT NULL UNIQUE,
    impi        TEXT    NOT NULL UNIQUE,
    k           TEXT,               -- hex, NULL for password-only (SIP Digest) subscribers
    op          TEXT,               -- hex, only when OP (not OPc) was provisioned
    opc         TEXT,               -- hex, always set when k is set
    op_given    INTEGER NOT NULL DEFAULT 0,  -- 1: OP was provisioned, 0: OPc
    amf         TEXT    NOT NULL DEFAULT '8000',
    sqn         INTEGER NOT NULL DEFAULT 0,  -- highest SQN reserved (see src/store/sqn.rs)
    password    TEXT,               -- SIP Digest password, NULL for AKA-only
    scscf_name  TEXT,               -- assigned S-CSCF (Server-Name)
    scscf_host  TEXT,               -- Origin-Host of the S-CSCF that did the SAR
    ifc_xml     TEXT,               -- optional iFC / ServiceProfile XML fragment
    created_at  INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE impus (
    impu           TEXT    PRIMARY KEY,
    subscriber_id  INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    position       INTEGER NOT NULL,
    irs            INTEGER NOT NULL DEFAULT 0,  -- implicit registration set number
    barred         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX impus_subscriber ON impus(subscriber_id);

-- Every provisioning change (create/update/delete) appends the IMSI here, in the same
-- transaction. A running HSS polls it to evict cached keys and SQN blocks.
CREATE TABLE changes (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    imsi  TEXT NOT NULL
);
