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
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Command::Serve(settings) = &cli.command {
        if settings.worker_threads > 0 {
            runtime.worker_threads(usize::from(settings.worker_threads));
        }
    }
    match runtime.build() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("tollgate: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    telemetry::init(&cli.log_format);
    let result = match cli.command {
        Command::Serve(settings) => app::serve(settings, shutdown::signal()).await,
        Command::CheckConfig { config } => {
            config::check_file(&config).map(|summary| println!("{summary}"))
        }
        Command::Apply(args) => bootstrap::apply_command(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}
