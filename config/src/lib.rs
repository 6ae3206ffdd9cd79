//! Configuration of every role: TOML files, environment overrides, validation.
