//! `box schema`: the Boxfile's JSON Schema on stdout, for editors that
//! complete and check TOML (taplo, Even Better TOML). The repository ships
//! the same text as `docs/boxfile.schema.json`.

use crate::boxfile;
use crate::error::ExitStatus;

use super::Settings;

pub(crate) fn run(g: &Settings) -> anyhow::Result<ExitStatus> {
    g.printer.data_bytes(boxfile::json_schema_text().as_bytes());
    Ok(ExitStatus::Success)
}
