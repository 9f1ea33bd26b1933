//! Seeding: a CSV of `rows` contacts, imported with the real `contacts-server import`, and
//! a PostgreSQL schema of its own per run.

use std::{io::Write, path::Path, time::Instant};

use anyhow::{Context, bail};
use chrono::{SecondsFormat, TimeDelta, Utc};
use sea_orm::ConnectionTrait;

/// What the seed holds, so the loads can address it.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub rows: usize,
}

/// Only one contact in 10,000 has an open window: "first 50 open windows" must find rare rows.
pub const OPEN_ONE_IN: usize = 10_000;

/// The business numbers the seeded messages reached: each contact that messaged did so on
/// one of them, alternately.
pub const BUSINESS_NUMBERS: [&str; 2] = ["106540352242922", "106540352242923"];

/// The `index`th seeded phone number: distinct for every index below 10^8.
pub fn phone(index: usize) -> String {
    let number = (index as u64).wrapping_mul(2_654_435_761) % 100_000_000;
    format!("+569{number:08}")
}

pub fn write_csv(path: &Path, rows: usize) -> anyhow::Result<Plan> {
    let now = Utc::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "phoneNumber,countryCode,lastWhatsappMessageAt,whatsappWindows,metadata.name,metadata.plan"
    )?;
    for index in 0..rows {
        let last = if index % OPEN_ONE_IN == 0 {
            Some(now - TimeDelta::minutes(30 + (index % 600) as i64))
        } else if index % 10 < 6 {
            Some(now - TimeDelta::hours(25 + (index % 700) as i64))
        } else {
            None
        };
        let last = last
            .map(|at| at.to_rfc3339_opts(SecondsFormat::Micros, true))
            .unwrap_or_default();
        // One CSV cell holding a JSON array; quotes doubled inside the quoted cell.
        let windows = if last.is_empty() {
            String::new()
        } else {
            let number = BUSINESS_NUMBERS[index % 2];
            format!(
                "\"[{{\"\"businessPhoneNumberId\"\":\"\"{number}\"\",\"\"lastInboundAt\"\":\"\"{last}\"\"}}]\""
            )
        };
        let plan = ["free", "basic", "pro"][index % 3];
        writeln!(
            out,
            "{},CL,{last},{windows},name{},{plan}",
            phone(index),
            index % 1000
        )?;
    }
    out.flush()?;
    Ok(Plan { rows })
}

/// Imports `csv` with the real binary; the rows per second it reached.
pub async fn import(bin_dir: &Path, url: &str, csv: &Path, plan: &Plan) -> anyhow::Result<f64> {
    let started = Instant::now();
    let output = tokio::process::Command::new(bin_dir.join("contacts-server"))
        .arg("import")
        .arg(csv)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .context("running contacts-server import")?;
    let elapsed = started.elapsed();
    let summary = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !summary.contains("rejected 0") {
        bail!(
            "import failed: {summary}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprintln!("   {}", summary.trim());
    Ok(plan.rows as f64 / elapsed.as_secs_f64())
}

pub async fn fresh_postgres_schema(server: &str) -> anyhow::Result<String> {
    let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let admin = sea_orm::Database::connect(server).await?;
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await?;
    admin.close().await?;
    let separator = if server.contains('?') { '&' } else { '?' };
    Ok(format!(
        "{server}{separator}options=-c%20search_path%3D{schema}"
    ))
}

pub async fn drop_postgres_schema(server: &str, url: &str) -> anyhow::Result<()> {
    let Some(schema) = url.rsplit("search_path%3D").next() else {
        return Ok(());
    };
    let admin = sea_orm::Database::connect(server).await?;
    admin
        .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await?;
    admin.close().await?;
    Ok(())
}
