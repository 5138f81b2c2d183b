//! gonogo-config: the TOML file an operator writes, checked strictly.
//!
//! Code map, in reading order:
//! - [`model`]: the validated types the agent uses (durations parsed, addresses split, regexes compiled,
//!   defaults applied). Start here.
//! - [`raw`]: serde structs mirroring the file one to one (`deny_unknown_fields` everywhere, spans kept).
//! - [`validate`]: raw → model, collecting *every* problem before failing.
//! - [`error`]: [`Problem`] (file, line, column, key path, message) and [`Problems`].
//! - [`schema`]: the JSON Schema of the file for editors, generated from [`raw`]'s key tables.
//!
//! This crate reads one file and does no other I/O (a `ca_file` is checked for existence by the agent's
//! plan, and the `[api]` TLS files and the `[evidence]` signing key are read by the agent when it starts, not
//! here).

pub mod error;
pub mod model;
pub mod raw;
pub mod schema;
pub mod validate;

use std::path::Path;

pub use error::{Problem, Problems};
pub use model::*;

/// Read and validate the file at `path`.
pub fn load(path: &Path) -> Result<Config, Problems> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Problems::single(Problem::file(path, format!("cannot read config file: {e}"))))?;
    parse(&text, path)
}

/// Validate `text` as the contents of the file `path` (used in messages only).
pub fn parse(text: &str, path: &Path) -> Result<Config, Problems> {
    validate::validate(text, path)
}
