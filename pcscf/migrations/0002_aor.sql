-- The AOR (To of the REGISTER) the P-CSCF keys the UE by, so a restart rebuilds the same
-- per-UE entry the UE's next REGISTER finds. '' for rows written before this column.
ALTER TABLE pcscf_registration ADD COLUMN aor TEXT NOT NULL DEFAULT '';
