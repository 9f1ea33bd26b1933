//! The servers under load, as processes: their address, CPU time and peak memory.

use std::{path::Path, process::Stdio, time::Duration};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::load::Target;

pub struct Server {
    pub base: String,
    pub target: Target,
    pub client: reqwest::Client,
    child: Child,
    pid: u32,
}

impl Server {
    pub async fn start(bin_dir: &Path, target: Target, url: &str) -> anyhow::Result<Self> {
        let port = free_port()?;
        let binary = match target {
            Target::Graphql => "contacts-server",
            Target::Baseline => "bench-baseline",
            Target::Raw => "bench-raw-baseline",
        };
        let child = Command::new(bin_dir.join(binary))
            .env("DATABASE_URL", url)
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("RUST_LOG", "warn")
            .env("LOG_FORMAT", "json")
            // The load comes from one address: rate limiting would measure itself.
            .env("RATE_LIMIT_PER_MINUTE", "0")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let pid = child.id().context("server pid")?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()?;
        let server = Self {
            base: format!("http://127.0.0.1:{port}"),
            target,
            client,
            child,
            pid,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    /// Polls until the server answers (start-up includes migrations).
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let probe = match self.target {
            Target::Graphql => format!("{}/healthz", self.base),
            Target::Baseline | Target::Raw => format!("{}/stats", self.base),
        };
        for _ in 0..600 {
            let answer = match self.target {
                Target::Graphql => self.client.get(&probe).send().await,
                Target::Baseline | Target::Raw => self.client.post(&probe).json(&()).send().await,
            };
            if answer.is_ok_and(|a| a.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{} did not start", self.target.name())
    }

    /// User plus system CPU time of the server process so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the command name (which may hold spaces) start at the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| -> anyhow::Result<u64> {
            Ok(fields.get(i).context("short /proc stat")?.parse()?)
        };
        // utime and stime are fields 14 and 15; after ')' they are the 12th and 13th.
        let total = ticks(11)? + ticks(12)?;
        Ok(Duration::from_secs_f64(total as f64 / clock_ticks()))
    }

    /// The process's peak resident memory (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let line = status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .context("no VmHWM")?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("VmHWM value")?
            .parse()?)
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Clock ticks per second of /proc times (USER_HZ).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}
