//! The command line, and what each subcommand runs.

use crate::driver::{closed_loop, open_loop, RunSpec};
use crate::redis_stats::{round_trips, CommandCalls, RedisStats};
use crate::report::{summary_line, Report};
use crate::target::{GrpcCheckQuota, RedisCeiling, RlsShape, RlsShouldRateLimit, Target};
use crate::wake_probe;
use crate::workload::{self, RlsDescriptor};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// tollgate-loadgen: load for tollgate, and the Redis ceiling it is measured against.
#[derive(Debug, Parser)]
#[command(name = "tollgate-loadgen", version)]
#[command(
    about = "Drives tollgate's CheckQuota or Envoy RLS ShouldRateLimit closed-loop or open-loop over many keys or one hot key, and runs tollgate's own check script straight against Redis for the ceiling.",
    after_help = "Every run prints its figures and a `SUMMARY key=value ...` line for scripts.\nSee loadtest/bench.sh for a whole benchmark."
)]
pub struct Cli {
    /// Threads driving the load. 1 (the default) runs everything on one thread, which on a
    /// machine shared with the server under test costs the least CPU per call: no hand-offs
    /// and wake-ups between threads. More help only when one thread is saturated.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Drive tollgate.v1.QuotaService/CheckQuota over gRPC.
    Grpc(GrpcArgs),
    /// Drive envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit over gRPC, with
    /// API-key descriptors (the gen-config plans) or plain client descriptors (the
    /// gen-rls-config rules).
    Rls(RlsArgs),
    /// Run tollgate's check.lua straight against Redis with the same callers and keys: one
    /// script call per round trip per caller, then pipelined for reference.
    Ceiling(CeilingArgs),
    /// Print the tollgate config (YAML) of the plans and keys the load uses.
    GenConfig {
        /// Ordinary keys (the hot key is always added).
        #[arg(long, default_value_t = 10_000)]
        keys: usize,
    },
    /// Print the Envoy rate-limit config (envoyproxy/ratelimit YAML) of `rls --descriptor
    /// client`: put it in the directory given to `tollgate serve --rls-config`.
    GenRlsConfig {
        /// Requests a second each ordinary client may make (the hot one gets 10).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        per_second: u32,
    },
    /// Measure what one wake-up costs on this host: two threads passing a byte back and
    /// forth, on one core and then across two (see docs/benchmarks.md on why it matters).
    WakeProbe {
        /// Round trips per layout, after a tenth as many unmeasured.
        #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        round_trips: u32,
    },
}

/// How hard, how long and over which keys.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent callers (closed loop), or the most calls in flight (open loop).
    #[arg(long, short = 'c', default_value_t = 50)]
    pub concurrency: usize,
    /// Measured time, e.g. 10s, 500ms, 2m.
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured warm-up before it.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Open loop at this many checks per second (default: closed loop).
    #[arg(long, short = 'r')]
    pub rate: Option<f64>,
    /// Ordinary keys, chosen uniformly (tollgate must have them: see gen-config).
    #[arg(long, short = 'k', default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub keys: u64,
    /// Add one abusive key sending --hot-factor times the traffic of all other keys together.
    #[arg(long)]
    pub hot: bool,
    /// How many times the traffic of all other keys the hot key sends.
    #[arg(long, default_value_t = 100, requires = "hot")]
    pub hot_factor: u32,
}

impl LoadArgs {
    fn spec(&self) -> RunSpec {
        RunSpec {
            concurrency: self.concurrency.max(1),
            duration: self.duration,
            warmup: self.warmup,
            keys: self.keys as usize,
            hot_factor: self.hot.then_some(self.hot_factor),
        }
    }
}

/// Where tollgate's gRPC is, and the Redis behind it.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// tollgate's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub addr: String,
    /// HTTP/2 connections to spread the callers over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Redis that tollgate uses: count its round trips per check with INFO commandstats.
    #[arg(long, value_name = "URL")]
    pub redis_stats: Option<String>,
}

/// `grpc`.
#[derive(Debug, Clone, Args)]
pub struct GrpcArgs {
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// The load.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `rls`. A request is one check whatever its number of descriptors: Envoy gets one
/// answer, OK or OVER_LIMIT, for all of them.
#[derive(Debug, Clone, Args)]
pub struct RlsArgs {
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// What each descriptor carries: api-key (the key's usage plan, as CheckQuota checks it;
    /// needs gen-config's keys) or client (a per-second rule; needs gen-rls-config's rules).
    #[arg(long, value_enum, default_value_t = RlsDescriptor::ApiKey)]
    pub descriptor: RlsDescriptor,
    /// Descriptors per request: the picked key's, then other ordinary keys', checked
    /// all-or-nothing.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub descriptors: u16,
    /// The request's domain (api-key descriptors ignore it).
    #[arg(long, default_value = workload::RLS_DOMAIN)]
    pub domain: String,
    /// The load.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `ceiling`.
#[derive(Debug, Clone, Args)]
pub struct CeilingArgs {
    /// The Redis to run the script on.
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    pub redis_url: String,
    /// Connections (default: one per caller, as a client pool without multiplexing has).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Calls in flight per caller in the pipelined run; 0 or 1 skips it.
    #[arg(long, default_value_t = 16)]
    pub pipeline: usize,
    /// Usage retention passed to the script, as tollgate's --usage-retention-days.
    #[arg(long, default_value_t = 90)]
    pub usage_retention_days: u32,
    /// The load.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Parses `10s`, `500ms`, `2m`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1_000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit in `{s}`; use ms, s or m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is out of range"))
}

async fn drive<T: Target>(target: &T, load: &LoadArgs) -> anyhow::Result<Report> {
    let spec = load.spec();
    match load.rate {
        Some(rate) => open_loop(target, &spec, rate / target.checks_per_call() as f64)
            .await
            .context("cannot pace the open loop"),
        None => Ok(closed_loop(target, &spec).await),
    }
}

fn print(report: &Report, redis: Option<&CommandCalls>) {
    print!("{}", report.human());
    let mut fields = report.fields();
    if let Some(calls) = redis {
        let total: u64 = calls.values().sum();
        let sent = report.stats.sent_total.max(1) as f64;
        let detail: Vec<String> = calls
            .iter()
            .map(|(c, n)| format!("{c}={:.2}", *n as f64 / sent))
            .collect();
        println!(
            "  redis: {total} calls from clients for {} checks, {:.2} per check ({})",
            report.stats.sent_total,
            total as f64 / sent,
            detail.join(" ")
        );
        fields.push(("redis_calls".into(), total.to_string()));
        fields.push((
            "redis_calls_per_check".into(),
            format!("{:.3}", total as f64 / sent),
        ));
        for (c, n) in calls {
            fields.push((format!("redis_{}", c.replace('|', "_")), n.to_string()));
        }
    }
    println!("{}", summary_line(&fields));
}

async fn snapshot(stats: &mut Option<RedisStats>) -> anyhow::Result<Option<CommandCalls>> {
    match stats {
        Some(s) => Ok(Some(s.snapshot().await?)),
        None => Ok(None),
    }
}

async fn with_redis_stats<T: Target>(
    target: &T,
    load: &LoadArgs,
    redis: Option<&str>,
) -> anyhow::Result<Report> {
    let mut stats = match redis {
        Some(url) => Some(RedisStats::connect(url).await?),
        None => None,
    };
    let before = snapshot(&mut stats).await?;
    let report = drive(target, load).await?;
    let after = snapshot(&mut stats).await?;
    let calls = before.zip(after).map(|(b, a)| round_trips(&b, &a));
    print(&report, calls.as_ref());
    Ok(report)
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs a parsed command line; returns the reports printed.
pub async fn run(cli: Cli) -> anyhow::Result<Vec<Report>> {
    match cli.command {
        Command::GenConfig { keys } => {
            print!("{}", workload::config_yaml(keys));
            Ok(Vec::new())
        }
        Command::GenRlsConfig { per_second } => {
            print!("{}", workload::rls_config_yaml(per_second));
            Ok(Vec::new())
        }
        Command::WakeProbe { round_trips } => {
            let costs = tokio::task::spawn_blocking(move || wake_probe::probe(round_trips))
                .await
                .context("the wake-up probe stopped")??;
            print!("{costs}");
            Ok(Vec::new())
        }
        Command::Grpc(a) => {
            let s = &a.server;
            let target =
                GrpcCheckQuota::connect(&s.addr, s.connections, a.load.keys as usize).await?;
            let r = with_redis_stats(&target, &a.load, s.redis_stats.as_deref()).await?;
            Ok(vec![r])
        }
        Command::Rls(a) => {
            let s = &a.server;
            let shape = RlsShape {
                descriptor: a.descriptor,
                per_request: usize::from(a.descriptors),
            };
            let target = RlsShouldRateLimit::connect(
                &s.addr,
                s.connections,
                a.load.keys as usize,
                &a.domain,
                shape,
            )
            .await?;
            let r = with_redis_stats(&target, &a.load, s.redis_stats.as_deref()).await?;
            Ok(vec![r])
        }
        Command::Ceiling(a) => {
            let keys = a.load.keys as usize;
            let catalog = workload::catalog(keys, now_s()).context("building the catalog")?;
            let conns = a.connections.unwrap_or(a.load.concurrency).max(1);
            let target = RedisCeiling::connect(
                &a.redis_url,
                conns,
                1,
                keys,
                &catalog,
                a.usage_retention_days,
            )
            .await?;
            let mut reports = vec![with_redis_stats(&target, &a.load, Some(&a.redis_url)).await?];
            if a.pipeline > 1 {
                let piped = RedisCeiling::connect(
                    &a.redis_url,
                    conns,
                    a.pipeline,
                    keys,
                    &catalog,
                    a.usage_retention_days,
                )
                .await?;
                reports.push(with_redis_stats(&piped, &a.load, Some(&a.redis_url)).await?);
            }
            Ok(reports)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap's own consistency checks.
    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Durations in the forms the help shows.
    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
