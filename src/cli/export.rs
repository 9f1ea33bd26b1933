//! `contacts-server export`: contacts matching the filter flags, chunk by chunk in id order,
//! so memory stays constant however many there are.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
};

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{ExportArgs, Format, domain_error, records::Writer};
use crate::contacts::{
    ContactService,
    bulk::BATCH_ROWS,
    filter::{ContactFilter, FilterInput},
    input,
};

pub async fn run(service: &ContactService, args: &ExportArgs) -> anyhow::Result<()> {
    let format = args
        .format
        .or_else(|| args.output.as_deref().and_then(Format::from_path))
        .unwrap_or(Format::Csv);
    let filter = ContactFilter::parse(filter_input(args)?, "filter").map_err(domain_error)?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => Box::new(io::stdout().lock()),
    };
    // One instant for the whole export, so the window filter means one thing throughout.
    let now = service.now();
    let keys = match format {
        Format::Csv => service.metadata_keys().await.map_err(domain_error)?,
        Format::Jsonl => Vec::new(),
    };
    let mut writer = Writer::new(BufWriter::new(out), format, keys)?;
    let mut after = None;
    let mut exported = 0u64;
    loop {
        let chunk = service
            .export_chunk(&filter, now, after, BATCH_ROWS as u64)
            .await
            .map_err(domain_error)?;
        let Some(last) = chunk.last() else { break };
        after = Some(last.id);
        let ids: Vec<_> = chunk.iter().map(|contact| contact.id).collect();
        let messaging = service.messaging_rows(&ids).await.map_err(domain_error)?;
        for contact in &chunk {
            let rows = messaging.get(&contact.id).cloned().unwrap_or_default();
            writer.write(contact, &rows)?;
        }
        exported += chunk.len() as u64;
    }
    writer.finish()?;
    eprintln!("exported {exported} contacts");
    Ok(())
}

fn filter_input(args: &ExportArgs) -> anyhow::Result<FilterInput> {
    let metadata = if args.metadata.is_empty() {
        None
    } else {
        let mut entries = Map::new();
        for entry in &args.metadata {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| anyhow!("--metadata takes KEY=VALUE, not {entry:?}"))?;
            entries.insert(key.to_owned(), Value::String(value.to_owned()));
        }
        Some(entries)
    };
    let window = match (args.window_open, args.window_closed) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    Ok(FilterInput {
        whatsapp_window_open: window,
        country_code: (!args.countries.is_empty()).then(|| args.countries.clone()),
        phone_number_prefix: args.phone_prefix.clone(),
        metadata,
        created_after: instant("--created-after", args.created_after)?,
        created_before: instant("--created-before", args.created_before)?,
        last_whatsapp_message_after: instant("--last-message-after", args.last_message_after)?,
        last_whatsapp_message_before: instant("--last-message-before", args.last_message_before)?,
        ..FilterInput::default()
    })
}

/// A time flag under the API's rule for timestamps (years 0001–9999 in UTC, no leap seconds).
fn instant(flag: &str, at: Option<DateTime<Utc>>) -> anyhow::Result<Option<DateTime<Utc>>> {
    at.map(|at| input::check_timestamp(at).map_err(|why| anyhow!("{flag}: {why}")))
        .transpose()
}
