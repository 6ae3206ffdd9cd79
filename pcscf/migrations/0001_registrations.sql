-- P-CSCF registration bindings (TS 24.229 §5.2.2.3): what the P-CSCF must remember of a
-- registered UE to assert its identity and reach it again after a restart.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS pcscf_registration (
    contact            TEXT PRIMARY KEY,   -- Contact URI of the binding as the UE registered it
    impi               TEXT NOT NULL,      -- private identity (Authorization username), may be empty
    public_identities  TEXT NOT NULL,      -- P-Associated-URI values, one per line, first = default
    service_route      TEXT NOT NULL,      -- Service-Route header values, one per line, in order
    transport          TEXT NOT NULL,      -- 'udp' or 'tcp'
    ue_addr            TEXT NOT NULL,      -- source address of the UE's REGISTER, ip:port
    expires_at         BIGINT NOT NULL,    -- UNIX time (s) at which the binding expires
    security           TEXT NOT NULL       -- negotiated Gm security (sec-agree) as text, '' when unprotected
);
CREATE INDEX IF NOT EXISTS pcscf_registration_ue_addr ON pcscf_registration (ue_addr);
