//! The `tollgate-loadgen` binary: parse the command line, build the runtime it asks for,
//! run, report.

use clap::Parser;
use std::process::ExitCode;
use tollgate_loadgen::cli::{run, Cli};

// The load generator shares the machine with the server it measures, so its own cost per
// call matters: in the open loop glibc's malloc (with its consolidation passes) took ~8 %
// of the generator's CPU, the same small short-lived buffers tollgate uses mimalloc for.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match cli.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(n))
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate-loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // On a multi-thread runtime, run the driver on a worker rather than on this thread,
    // so that its dispatch and the calls it spawns share the workers' queues instead of
    // handing every call from the main thread to a worker.
    let outcome = runtime.block_on(async move {
        match tokio::spawn(run(cli)).await {
            Ok(outcome) => outcome,
            Err(e) => Err(anyhow::anyhow!("the load driver stopped: {e}")),
        }
    });
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate-loadgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}
