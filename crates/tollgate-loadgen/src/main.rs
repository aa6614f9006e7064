//! The `tollgate-loadgen` binary: parse the command line, run, report.

use clap::Parser;
use std::process::ExitCode;
use tollgate_loadgen::cli::{run, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
