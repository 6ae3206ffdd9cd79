//! The HSS: Cx server, subscriber store, Milenage, provisioning API.
