-- HSS subscriber store, PostgreSQL flavour. Keep in step with ../sqlite/0001_subscribers.sql.
CREATE TABLE subscribers (
    id          BIGSERIAL PRIMARY KEY,
    imsi        TEXT    NOT NULL UNIQUE,
    impi        TEXT    NOT NULL UNIQUE,
    k           TEXT,
    op          TEXT,
    opc         TEXT,
    op_given    BIGINT  NOT NULL DEFAULT 0,
    amf         TEXT    NOT NULL DEFAULT '8000',
    sqn         BIGINT  NOT NULL DEFAULT 0,
    password    TEXT,
    scscf_name  TEXT,
    scscf_host  TEXT,
    ifc_xml     TEXT,
    created_at  BIGINT  NOT NULL DEFAULT 0,
    updated_at  BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE impus (
    impu           TEXT    PRIMARY KEY,
    subscriber_id  BIGINT  NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    position       BIGINT  NOT NULL,
    irs            BIGINT  NOT NULL DEFAULT 0,
    barred         BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX impus_subscriber ON impus(subscriber_id);

CREATE TABLE changes (
    seq   BIGSERIAL PRIMARY KEY,
    imsi  TEXT NOT NULL
);
