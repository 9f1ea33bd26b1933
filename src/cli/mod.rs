//! The command line: `serve` (the default) and the operator's tools. Each subcommand parses
//! its flags here and calls the same domain service the API uses.

mod export;
mod import;
mod records;
mod seed;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::{
    config::{Config, DatabaseArgs, LogArgs},
    contacts::{ContactService, clock::SystemClock},
    db::Db,
    events,
};

/// GraphQL contacts API for WhatsApp messaging.
///
/// Without a subcommand, serves GraphiQL and the API at http://HOST:PORT/graphql (`serve`).
/// Uses an embedded SQLite file by default; point DATABASE_URL at PostgreSQL to share one
/// database between instances.
#[derive(Debug, Parser)]
#[command(
    name = "contacts-server",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and GraphiQL (the default).
    #[command(after_help = "Examples:\n  contacts-server serve\n  \
        DATABASE_URL=postgres://app@db/contacts contacts-server serve --host 0.0.0.0 --api-key HASH:write")]
    Serve(Box<Config>),

    /// Apply or list database migrations (the server also applies them at start-up).
    #[command(
        after_help = "Examples:\n  contacts-server migrate up\n  contacts-server migrate status"
    )]
    Migrate(MigrateArgs),

    /// Print the GraphQL schema (SDL) the server serves.
    #[command(after_help = "Example:\n  contacts-server print-schema > schema.graphql")]
    PrintSchema,

    /// Import contacts from CSV or JSON Lines, upserting by phone number.
    #[command(
        after_help = "CSV: a header row `phoneNumber,countryCode,lastWhatsappMessageAt`, plus one \
        `metadata.<key>` column per metadata key.\nJSON Lines: one object per line with the same \
        fields, `metadata` an object.\n\nExit status: 0 all rows imported, 3 finished with rejected \
        rows, 1 failed.\n\nExamples:\n  contacts-server import contacts.csv\n  \
        contacts-server import contacts.jsonl --rejects rejected.jsonl\n  \
        cat contacts.csv | contacts-server import - --format csv"
    )]
    Import(ImportArgs),

    /// Export contacts as CSV or JSON Lines (imports back to the same data).
    #[command(
        after_help = "Examples:\n  contacts-server export --output contacts.csv\n  \
        contacts-server export --format jsonl --window-open --country CL > open-cl.jsonl\n  \
        contacts-server export --metadata plan=pro --created-after 2026-01-01T00:00:00Z"
    )]
    Export(ExportArgs),

    /// Add realistic demo contacts: several countries, windows open, closing soon, closed
    /// and never opened, with metadata.
    #[command(after_help = "Example:\n  contacts-server seed-demo --count 1000")]
    SeedDemo(SeedArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: MigrateAction,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// List migrations and whether each is applied.
    Status,
}

/// File formats of import and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// The format a file name implies: `.csv`, or `.jsonl` / `.ndjson`.
    fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            _ => None,
        }
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import; `-` reads standard input.
    pub file: PathBuf,
    /// The file's format (default: from its extension).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write rejected rows here, as they were, to fix and import again.
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Where to write (default: standard output).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The output format (default: from --output's extension, else CSV).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Only contacts whose WhatsApp window is open now.
    #[arg(long, conflicts_with = "window_closed")]
    pub window_open: bool,
    /// Only contacts whose WhatsApp window is closed now.
    #[arg(long)]
    pub window_closed: bool,
    /// Only these countries (ISO 3166 codes); repeat or separate with commas.
    #[arg(long = "country", value_delimiter = ',')]
    pub countries: Vec<String>,
    /// Only phone numbers starting with this (E.164 prefix, e.g. +569).
    #[arg(long)]
    pub phone_prefix: Option<String>,
    /// Only contacts with this metadata entry, as KEY=VALUE; repeat for several.
    #[arg(long = "metadata", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// Only contacts created after this instant (RFC 3339).
    #[arg(long)]
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only contacts created before this instant (RFC 3339).
    #[arg(long)]
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Only contacts whose last message came after this instant (RFC 3339).
    #[arg(long)]
    pub last_message_after: Option<chrono::DateTime<chrono::Utc>>,
    /// Only contacts whose last message came before this instant (RFC 3339).
    #[arg(long)]
    pub last_message_before: Option<chrono::DateTime<chrono::Utc>>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// How many contacts to add.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Seed of the generator: the same seed gives the same contacts.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Logging for every subcommand: the server's own flags, or the defaults for the tools.
pub fn log_args(cli: &Cli) -> LogArgs {
    match &cli.command {
        Some(Command::Serve(config)) => config.log.clone(),
        None => cli.serve.log.clone(),
        // Tools write data to standard output: logs go to standard error, warnings only.
        Some(_) => LogArgs {
            filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            format: "text".into(),
            to_stderr: true,
        },
    }
}

/// Runs the chosen subcommand; the `u8` is the process exit status.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        None => crate::run(cli.serve).await.map(|()| 0),
        Some(Command::Serve(config)) => crate::run(*config).await.map(|()| 0),
        Some(Command::PrintSchema) => {
            std::io::Write::write_all(&mut std::io::stdout(), crate::graphql::sdl().as_bytes())?;
            Ok(0)
        }
        Some(Command::Migrate(args)) => migrate(args).await.map(|()| 0),
        Some(Command::Import(args)) => {
            let service = service(&args.database).await?;
            import::run(&service, &args).await
        }
        Some(Command::Export(args)) => {
            let service = service(&args.database).await?;
            export::run(&service, &args).await.map(|()| 0)
        }
        Some(Command::SeedDemo(args)) => {
            let service = service(&args.database).await?;
            seed::run(&service, &args).await.map(|()| 0)
        }
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let db = Db::connect(&unbounded(&args.database)).await?;
    match args.action {
        MigrateAction::Up => {
            db.migrate().await?;
            for (name, _) in db.migration_status().await? {
                println!("applied  {name}");
            }
        }
        MigrateAction::Status => {
            for (name, applied) in db.migration_status().await? {
                println!("{}  {name}", if applied { "applied" } else { "pending" });
            }
        }
    }
    db.close().await;
    Ok(())
}

/// A domain error as a command-line error.
fn domain_error(err: crate::error::AppError) -> anyhow::Error {
    anyhow::anyhow!(err.describe())
}

/// The command-line tools' connections: no statement deadline, since an operator's import,
/// export or migration of a large table runs as long as it needs.
fn unbounded(database: &DatabaseArgs) -> crate::db::DbOptions {
    let mut options = database.options();
    options.statement_timeout = std::time::Duration::ZERO;
    options
}

/// The domain service on a migrated database, announcing changes to running servers.
async fn service(database: &DatabaseArgs) -> anyhow::Result<ContactService> {
    let db = Db::connect(&unbounded(database)).await?;
    db.migrate().await?;
    db.prepare_for_bulk_writes().await?;
    let events = events::announcer(&db)
        .await
        .context("preparing change notifications")?;
    Ok(ContactService::new(
        db,
        std::sync::Arc::new(SystemClock),
        events,
    ))
}
