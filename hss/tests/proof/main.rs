//! Proof tests of the HSS (one test binary; real TCP on 127.0.0.1, SQLite temp files).

mod cli;
mod cx;
mod harness;
mod interop;
mod malformed;
mod rest;
mod sqn;
mod util;
