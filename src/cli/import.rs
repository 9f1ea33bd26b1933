//! `contacts-server import FILE`: rows are checked one by one (a bad row is reported with its
//! line and reason, never stopping the rest), then upserted in batches of 10,000 by the bulk
//! engine `importContacts` also uses, each batch one transaction with multi-row statements.

use std::{
    collections::HashMap,
    fs::File,
    io::{self, BufWriter, IsTerminal, Read},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressStyle};

use super::{
    Format, ImportArgs,
    records::{RawRow, Rejects, Rows},
};
use crate::{
    contacts::{
        ContactService,
        bulk::{BATCH_ROWS, BatchReport, BulkOutcome},
        input::NewContact,
    },
    error::AppError,
};

/// Valid rows per transaction: one commit (one sync) per 10,000 rows, in statements of
/// [`BATCH_ROWS`]; a batch waits in memory (a few MiB) until it is full.
const TRANSACTION_ROWS: usize = 10 * BATCH_ROWS;

/// Exit status when the import finished but rejected rows.
const REJECTED_ROWS: u8 = 3;

pub async fn run(service: &ContactService, args: &ImportArgs) -> anyhow::Result<u8> {
    let from_stdin = args.file.as_os_str() == "-";
    let format = args
        .format
        .or_else(|| Format::from_path(&args.file))
        .ok_or_else(|| {
            anyhow!(
                "cannot tell the format of {}: add --format csv or --format jsonl",
                args.file.display()
            )
        })?;
    let (input, size): (Box<dyn Read>, Option<u64>) = if from_stdin {
        (Box::new(io::stdin().lock()), None)
    } else {
        let file =
            File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let read = Arc::new(AtomicU64::new(0));
    let rows = Rows::open(
        Counting {
            inner: input,
            read: read.clone(),
        },
        format,
    )?;
    let rejects = match &args.rejects {
        Some(path) => Some(Rejects::new(
            BufWriter::new(create(path)?),
            rows.csv_header(),
        )?),
        None => None,
    };
    let mut out = Outcome {
        totals: Totals::default(),
        progress: Progress::new(size),
        rejects,
    };
    // The first line of each phone number (as its E.164 digits): a file holds each number
    // once, which is what makes importing it twice a no-op.
    let mut seen: HashMap<u64, u64> = HashMap::new();
    let mut seen_ids: HashMap<String, u64> = HashMap::new();
    let mut batch = Batch::default();
    let mut writing: Option<Writing> = None;
    let mut statistics = Statistics::default();
    let mut now = service.now();
    for row in rows {
        let row = row?;
        out.totals.rows += 1;
        let contact = row
            .input
            .and_then(|input| NewContact::parse(input, "", now).map_err(describe));
        match contact {
            Err(reason) => out.reject(row.line, &row.raw, &reason)?,
            Ok(contact) => match first_line(&mut seen, &mut seen_ids, &contact, row.line) {
                Some(reason) => out.reject(row.line, &row.raw, &reason)?,
                None => {
                    batch.contacts.push(contact);
                    batch.rows.push((row.line, row.raw));
                }
            },
        }
        if batch.contacts.len() == TRANSACTION_ROWS {
            // The next batch is read and checked while this one is written.
            finish(writing.take(), &mut out).await?;
            statistics.refresh_if_grown(service, &out.totals).await?;
            writing = Some(start(service, &mut batch));
            now = service.now();
        }
        out.progress
            .update(read.load(Ordering::Relaxed), &out.totals);
    }
    finish(writing.take(), &mut out).await?;
    finish(Some(start(service, &mut batch)), &mut out).await?;
    if out.totals.written.created + out.totals.written.updated > 0 {
        service
            .analyze()
            .await
            .map_err(|err| anyhow!(describe(err)))?;
    }
    let Outcome {
        totals,
        progress,
        rejects,
    } = out;
    progress.finish();
    if let Some(rejects) = rejects {
        rejects.finish()?;
    }
    let elapsed = progress.started.elapsed();
    println!(
        "imported {}: {} rows, created {}, updated {}, unchanged {}, rejected {} in {:.1} s ({:.0} rows/s)",
        args.file.display(),
        totals.rows,
        totals.written.created,
        totals.written.updated,
        totals.written.unchanged,
        totals.rejected,
        elapsed.as_secs_f64(),
        totals.rows as f64 / elapsed.as_secs_f64().max(1e-9),
    );
    Ok(if totals.rejected > 0 {
        REJECTED_ROWS
    } else {
        0
    })
}

#[derive(Debug, Default)]
struct Totals {
    rows: u64,
    rejected: u64,
    written: BatchReport,
}

/// Valid rows waiting to be written, with where each came from.
#[derive(Default)]
struct Batch {
    contacts: Vec<NewContact>,
    rows: Vec<(u64, RawRow)>,
}

/// What the import has done so far, and where it reports.
struct Outcome {
    totals: Totals,
    progress: Progress,
    rejects: Option<Rejects<BufWriter<File>>>,
}

impl Outcome {
    /// Reports a rejected row and writes it, as it was, to the rejects file.
    fn reject(&mut self, line: u64, raw: &RawRow, reason: &str) -> anyhow::Result<()> {
        self.totals.rejected += 1;
        self.progress.println(&format!("line {line}: {reason}"));
        if let Some(rejects) = self.rejects.as_mut() {
            rejects.write(raw)?;
        }
        Ok(())
    }
}

/// Why `contact` (at `line`) repeats an earlier row's phone number or WhatsApp user id, if
/// it does; otherwise records its identities as first seen at `line`.
fn first_line(
    phones: &mut HashMap<u64, u64>,
    user_ids: &mut HashMap<String, u64>,
    contact: &NewContact,
    line: u64,
) -> Option<String> {
    let phone = contact.phone.as_ref().map(|p| digits(&p.e164));
    if let Some(first) = phone.and_then(|key| phones.get(&key)) {
        return Some(format!("the same phone number as line {first}"));
    }
    let user_id = contact.whatsapp.user_id.clone();
    if let Some(first) = user_id.as_ref().and_then(|key| user_ids.get(key)) {
        return Some(format!("the same WhatsApp user id as line {first}"));
    }
    phones.extend(phone.map(|key| (key, line)));
    user_ids.extend(user_id.map(|key| (key, line)));
    None
}

/// When to refresh the planner's statistics during an import: each time the rows written
/// double. Without them PostgreSQL takes the growing table for the empty one it last
/// measured and answers each batch's lookup of stored numbers with a full scan, so the import
/// slows down as it goes; a doubling schedule costs a handful of `ANALYZE`s at any size.
#[derive(Default)]
struct Statistics {
    next: usize,
}

impl Statistics {
    async fn refresh_if_grown(
        &mut self,
        service: &ContactService,
        totals: &Totals,
    ) -> anyhow::Result<()> {
        let written = totals.written.created + totals.written.updated;
        if written < self.next.max(TRANSACTION_ROWS) {
            return Ok(());
        }
        self.next = written * 2;
        service
            .analyze()
            .await
            .map_err(|err| anyhow!(describe(err)))
    }
}

/// A batch being written, with where each of its rows came from.
struct Writing {
    rows: Vec<(u64, RawRow)>,
    task: tokio::task::JoinHandle<Result<BulkOutcome, AppError>>,
}

/// Starts writing and empties `batch` with the bulk engine `importContacts` also uses: one
/// transaction; when the database refuses a row for anything but being out of reach, only the
/// rows it refuses are rejected.
fn start(service: &ContactService, batch: &mut Batch) -> Writing {
    let contacts = std::mem::take(&mut batch.contacts);
    let service = service.clone();
    Writing {
        rows: std::mem::take(&mut batch.rows),
        task: tokio::spawn(async move { service.upsert_rows(&contacts).await }),
    }
}

/// Waits for `writing` and reports what it did.
async fn finish(writing: Option<Writing>, out: &mut Outcome) -> anyhow::Result<()> {
    let Some(Writing { rows, task }) = writing else {
        return Ok(());
    };
    let outcome = match task.await.context("writing a batch")? {
        Ok(outcome) => outcome,
        Err(err) => return Err(batch_failed(err, &out.totals)),
    };
    out.totals.written.add(outcome.report);
    for (position, err) in outcome.refused {
        if let Some((line, raw)) = rows.get(position) {
            out.reject(*line, raw, &describe(err))?;
        }
    }
    Ok(())
}

fn batch_failed(err: AppError, totals: &Totals) -> anyhow::Error {
    anyhow!(
        "writing a batch failed after {} rows were read (earlier batches are saved; \
         importing the file again is safe): {}",
        totals.rows,
        describe(err)
    )
}

fn create(path: &Path) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("creating {}", path.display()))
}

/// `+56912345678` as the number 56912345678 (E.164 has at most 15 digits: it fits).
fn digits(e164: &str) -> u64 {
    e164.trim_start_matches('+').parse().unwrap_or(u64::MAX)
}

/// Why a row or a batch failed; a database outage also says its code.
fn describe(err: AppError) -> String {
    match err {
        AppError::Validation { .. } => err.describe(),
        other => format!("{} ({})", other.describe(), other.code()),
    }
}

/// Counts the bytes read, for the progress bar's position and ETA.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A live bar on a terminal; a plain line every few seconds otherwise (logs, CI).
struct Progress {
    bar: Option<ProgressBar>,
    size: Option<u64>,
    started: Instant,
    last_line: Instant,
}

const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    fn new(size: Option<u64>) -> Self {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = match size {
                Some(size) => ProgressBar::new(size).with_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                ),
                None => ProgressBar::new_spinner(),
            };
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            size,
            started: now,
            last_line: now,
        }
    }

    fn rate(&self, totals: &Totals) -> f64 {
        totals.rows as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    fn update(&mut self, read: u64, totals: &Totals) {
        if !totals.rows.is_multiple_of(256) {
            return;
        }
        let summary = format!(
            "{} rows, {:.0} rows/s, {} rejected",
            totals.rows,
            self.rate(totals),
            totals.rejected
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(read);
                bar.set_message(summary);
            }
            None if self.last_line.elapsed() >= PLAIN_EVERY => {
                self.last_line = Instant::now();
                let done = self
                    .size
                    .filter(|size| *size > 0)
                    .map(|size| format!(" ({:.0}%)", read as f64 * 100.0 / size as f64))
                    .unwrap_or_default();
                eprintln!("import: {summary}{done}");
            }
            None => {}
        }
    }

    fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_numbers_map_to_distinct_keys() {
        assert_eq!(digits("+56912345678"), 56_912_345_678);
        assert_ne!(digits("+14155550100"), digits("+14155550101"));
        assert_eq!(digits("+999999999999999"), 999_999_999_999_999);
    }
}
