//! The `tollgate` binary: parse the command line, build the runtime it asks for, then hand
//! over to the library.

use clap::Parser;
use std::process::ExitCode;
use tollgate_server::cli::{Cli, Command};
use tollgate_server::{app, bootstrap, config, shutdown, telemetry};

// A check allocates many small short-lived buffers (HTTP/2 frames, protobuf, Redis
// arguments); glibc's malloc spent ~10 % of the hot path's cycles on them in a perf profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Serve(settings) => settings.worker_threads,
        _ => 0,
    };
    match runtime(threads) {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("tollgate: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime for `threads` request threads (0: one per CPU).
///
/// One thread is tokio's current-thread scheduler rather than the multi-thread one with a
/// single worker: everything then runs on the thread that waits for I/O, with none of the
/// work-stealing bookkeeping, and beside Redis on two cores it served 12-15 % more checks
/// per second in nine interleaved rounds (docs/benchmarks.md).
fn runtime(threads: u16) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut multi = tokio::runtime::Builder::new_multi_thread();
        if threads > 0 {
            multi.worker_threads(usize::from(threads));
        }
        multi
    };
    builder.enable_all().build()
}

async fn run(cli: Cli) -> ExitCode {
    // Only the server sends traces; its endpoint may also come from the OTEL_ variables.
    let otlp_endpoint = match &cli.command {
        Command::Serve(settings) => telemetry::otlp_endpoint(settings.otlp_endpoint.as_deref()),
        _ => Ok(None),
    };
    let started = otlp_endpoint.and_then(|e| telemetry::init(&cli.log_format, e.as_deref()));
    let telemetry = match started {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(settings) => app::serve(settings, shutdown::signal()).await,
        Command::CheckConfig { config } => {
            config::check_file(&config).map(|summary| println!("{summary}"))
        }
        Command::Apply(args) => bootstrap::apply_command(args).await,
    };
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
