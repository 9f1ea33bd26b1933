//! The file formats of import and export: CSV (`phoneNumber,countryCode,
//! lastWhatsappMessageAt,metadata.<key>…`) and JSON Lines (one contact object per line).
//! CSV metadata cells are guarded against spreadsheet formulas: see [`formula`].

mod formula;

use std::io::{BufRead, BufReader, Read, Write};

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use entity::contact::Model;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use self::formula::{guard, unguard};
use super::Format;
use crate::contacts::{
    input::{self, ContactInput},
    messaging_state::{MessagingInput, PreferenceEntry, WindowEntry},
    policy::MessagingRows,
    windows,
};

const PHONE: &str = "phoneNumber";
const COUNTRY: &str = "countryCode";
const LAST_MESSAGE: &str = "lastWhatsappMessageAt";
const METADATA_PREFIX: &str = "metadata.";
const USER_ID: &str = "whatsappUserId";
const PARENT_USER_ID: &str = "parentWhatsappUserId";
const USERNAME: &str = "whatsappUsername";
const PROFILE_NAME: &str = "whatsappProfileName";
/// The WhatsApp identity columns, in the order an export writes them.
const IDENTITY: [&str; 4] = [USER_ID, PARENT_USER_ID, USERNAME, PROFILE_NAME];
const BLOCKED: &str = "blocked";
/// A JSON array of `{businessPhoneNumberId, lastInboundAt}` (in CSV, one cell).
const WINDOWS: &str = "whatsappWindows";
/// A JSON array of `{businessPhoneNumberId, optedOut, at}` (in CSV, one cell).
const PREFERENCES: &str = "marketingPreferences";
/// The messaging columns, in the order an export writes them.
const MESSAGING: [&str; 3] = [BLOCKED, WINDOWS, PREFERENCES];

/// One row of an import file: where it was, what it said, and what it means.
pub struct Row {
    /// 1-based line of the file where the row starts.
    pub line: u64,
    pub raw: RawRow,
    /// The contact, or why the row cannot be one.
    pub input: Result<ContactInput, String>,
}

/// A row as it was in the file, to write to the rejects file unchanged.
pub enum RawRow {
    Csv(csv::StringRecord),
    Line(String),
}

/// The rows of an import file, in order.
pub enum Rows<R: Read> {
    Csv {
        reader: csv::Reader<R>,
        header: csv::StringRecord,
        columns: Vec<Column>,
    },
    Jsonl {
        lines: std::io::Lines<BufReader<R>>,
        line: u64,
    },
}

/// What a CSV column holds.
#[derive(Debug, Clone)]
pub enum Column {
    Phone,
    Country,
    LastMessage,
    /// One of [`IDENTITY`], by position.
    Identity(usize),
    Blocked,
    Windows,
    Preferences,
    Metadata(String),
}

impl<R: Read> Rows<R> {
    /// Reads the header of a CSV file; a header the importer does not understand fails here,
    /// before anything is written.
    pub fn open(reader: R, format: Format) -> anyhow::Result<Self> {
        match format {
            Format::Jsonl => Ok(Self::Jsonl {
                lines: BufReader::new(reader).lines(),
                line: 0,
            }),
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
                let header = reader.headers().context("reading the CSV header")?.clone();
                let columns = header
                    .iter()
                    .map(|name| match name.trim() {
                        PHONE => Ok(Column::Phone),
                        COUNTRY => Ok(Column::Country),
                        LAST_MESSAGE => Ok(Column::LastMessage),
                        BLOCKED => Ok(Column::Blocked),
                        WINDOWS => Ok(Column::Windows),
                        PREFERENCES => Ok(Column::Preferences),
                        other if IDENTITY.contains(&other) => Ok(Column::Identity(
                            IDENTITY
                                .iter()
                                .position(|c| *c == other)
                                .unwrap_or_default(),
                        )),
                        other => match other.strip_prefix(METADATA_PREFIX) {
                            Some(key) if !key.is_empty() => Ok(Column::Metadata(key.to_owned())),
                            _ => bail!(
                                "unknown CSV column {other:?}: expected {PHONE}, {COUNTRY}, \
                                 {LAST_MESSAGE}, {USER_ID}, {PARENT_USER_ID}, {USERNAME}, \
                                 {PROFILE_NAME}, {BLOCKED}, {WINDOWS}, {PREFERENCES} or \
                                 {METADATA_PREFIX}<key>"
                            ),
                        },
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let identified = |c: &Column| matches!(c, Column::Phone | Column::Identity(0));
                if !columns.iter().any(identified) {
                    bail!("the CSV header has neither a {PHONE} nor a {USER_ID} column");
                }
                Ok(Self::Csv {
                    reader,
                    header,
                    columns,
                })
            }
        }
    }

    /// The CSV header, for a rejects file.
    pub fn csv_header(&self) -> Option<&csv::StringRecord> {
        match self {
            Self::Csv { header, .. } => Some(header),
            Self::Jsonl { .. } => None,
        }
    }
}

impl<R: Read> Iterator for Rows<R> {
    /// A row, or an error that ends the import (the file cannot be read).
    type Item = anyhow::Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Csv {
                reader, columns, ..
            } => {
                let mut record = csv::StringRecord::new();
                match reader.read_record(&mut record) {
                    Ok(false) => None,
                    Ok(true) => {
                        let line = record.position().map_or(0, |p| p.line());
                        let input = csv_contact(columns, &record);
                        Some(Ok(Row {
                            line,
                            raw: RawRow::Csv(record),
                            input,
                        }))
                    }
                    Err(err) => match err.kind() {
                        // Unreadable bytes in one row: that row is rejected, the rest goes on.
                        csv::ErrorKind::Utf8 { pos, err } => Some(Ok(Row {
                            line: pos.as_ref().map_or(0, csv::Position::line),
                            raw: RawRow::Line(String::new()),
                            input: Err(format!("not UTF-8: {err}")),
                        })),
                        _ => Some(Err(anyhow::Error::new(err).context("reading the CSV file"))),
                    },
                }
            }
            Self::Jsonl { lines, line } => loop {
                *line += 1;
                let text = match lines.next()? {
                    Ok(text) => text,
                    Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                        return Some(Ok(Row {
                            line: *line,
                            raw: RawRow::Line(String::new()),
                            input: Err("not UTF-8".into()),
                        }));
                    }
                    Err(err) => return Some(Err(anyhow::Error::new(err).context("reading"))),
                };
                // Blank lines (a trailing newline, spacing) are not rows.
                if text.trim().is_empty() {
                    continue;
                }
                let input = json_contact(&text);
                return Some(Ok(Row {
                    line: *line,
                    raw: RawRow::Line(text),
                    input,
                }));
            },
        }
    }
}

fn csv_contact(columns: &[Column], record: &csv::StringRecord) -> Result<ContactInput, String> {
    if record.len() != columns.len() {
        return Err(format!(
            "{} fields where the header has {}",
            record.len(),
            columns.len()
        ));
    }
    let mut input = ContactInput::default();
    let mut metadata = Map::new();
    let has_metadata = columns.iter().any(|c| matches!(c, Column::Metadata(_)));
    for (column, cell) in columns.iter().zip(record.iter()) {
        let cell = cell.trim();
        match column {
            // An empty cell is a value the contact does not have.
            Column::Phone if !cell.is_empty() => input.phone_number = Some(cell.to_owned()),
            Column::Identity(at) if !cell.is_empty() => {
                let value = Some(unguard(cell).to_owned());
                match *at {
                    0 => input.whatsapp_user_id = value,
                    1 => input.parent_whatsapp_user_id = value,
                    2 => input.whatsapp_username = value,
                    _ => input.whatsapp_profile_name = value,
                }
            }
            Column::Country if !cell.is_empty() => input.country_code = Some(cell.to_owned()),
            Column::LastMessage if !cell.is_empty() => {
                input.last_whatsapp_message_at = Some(parse_time(cell)?);
            }
            Column::Blocked if !cell.is_empty() => {
                input.messaging.blocked = Some(match cell {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("{BLOCKED}: true or false, not {cell:?}")),
                });
            }
            Column::Windows if !cell.is_empty() => {
                let list = serde_json::from_str(cell).map_err(|e| format!("{WINDOWS}: {e}"))?;
                input.messaging.windows = Some(windows_in(list)?);
            }
            Column::Preferences if !cell.is_empty() => {
                let list = serde_json::from_str(cell).map_err(|e| format!("{PREFERENCES}: {e}"))?;
                input.messaging.preferences = Some(preferences_in(list)?);
            }
            // An empty cell is a key the contact does not have.
            Column::Metadata(key) if !cell.is_empty() => {
                metadata.insert(key.clone(), Value::String(unguard(cell).to_owned()));
            }
            _ => {}
        }
    }
    if has_metadata {
        input.metadata = Some(metadata);
    }
    Ok(input)
}

/// The API's rule for timestamps (RFC 3339, years 0001–9999 in UTC, no leap seconds).
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    parse_time_of(LAST_MESSAGE, text)
}

fn parse_time_of(field: &str, text: &str) -> Result<DateTime<Utc>, String> {
    input::parse_timestamp(text).map_err(|why| format!("{field}: {why}"))
}

/// A window as a file holds it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileWindow {
    business_phone_number_id: Option<String>,
    last_inbound_at: String,
}

/// A marketing choice as a file holds it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FilePreference {
    business_phone_number_id: Option<String>,
    opted_out: bool,
    at: String,
}

fn windows_in(list: Vec<FileWindow>) -> Result<Vec<WindowEntry>, String> {
    list.into_iter()
        .map(|w| {
            Ok((
                w.business_phone_number_id,
                parse_time_of(WINDOWS, &w.last_inbound_at)?,
            ))
        })
        .collect()
}

fn preferences_in(list: Vec<FilePreference>) -> Result<Vec<PreferenceEntry>, String> {
    list.into_iter()
        .map(|p| {
            let at = parse_time_of(PREFERENCES, &p.at)?;
            Ok((p.business_phone_number_id, p.opted_out, at))
        })
        .collect()
}

fn windows_out(rows: &MessagingRows) -> Vec<FileWindow> {
    rows.windows
        .iter()
        .map(|w| FileWindow {
            business_phone_number_id: windows::public(&w.business_phone_number_id)
                .map(str::to_owned),
            last_inbound_at: time(w.last_inbound_at),
        })
        .collect()
}

fn preferences_out(rows: &MessagingRows) -> Vec<FilePreference> {
    let mut list: Vec<FilePreference> = rows
        .preferences
        .iter()
        .map(|p| FilePreference {
            business_phone_number_id: windows::public(&p.business_phone_number_id)
                .map(str::to_owned),
            opted_out: p.opted_out,
            at: time(p.recorded_at),
        })
        .collect();
    // A stable order, so two exports of the same data are the same file.
    list.sort_by(|a, b| a.business_phone_number_id.cmp(&b.business_phone_number_id));
    list
}

/// A JSON Lines contact; unknown fields are refused, so a misspelt one is not silently lost.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsonContact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_whatsapp_message_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    whatsapp_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent_whatsapp_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    whatsapp_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    whatsapp_profile_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blocked: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    whatsapp_windows: Option<Vec<FileWindow>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    marketing_preferences: Option<Vec<FilePreference>>,
}

fn json_contact(text: &str) -> Result<ContactInput, String> {
    let contact: JsonContact =
        serde_json::from_str(text).map_err(|err| format!("not a contact object: {err}"))?;
    Ok(ContactInput {
        phone_number: contact.phone_number,
        country_code: contact.country_code,
        last_whatsapp_message_at: contact
            .last_whatsapp_message_at
            .as_deref()
            .map(parse_time)
            .transpose()?,
        metadata: contact.metadata,
        whatsapp_user_id: contact.whatsapp_user_id,
        parent_whatsapp_user_id: contact.parent_whatsapp_user_id,
        whatsapp_username: contact.whatsapp_username,
        whatsapp_profile_name: contact.whatsapp_profile_name,
        messaging: MessagingInput {
            windows: contact.whatsapp_windows.map(windows_in).transpose()?,
            preferences: contact
                .marketing_preferences
                .map(preferences_in)
                .transpose()?,
            blocked: contact.blocked,
        },
    })
}

/// A contact's values for the [`IDENTITY`] columns.
fn identity_of(contact: &Model) -> [Option<String>; 4] {
    [
        contact.whatsapp_user_id.clone(),
        contact.parent_whatsapp_user_id.clone(),
        contact.whatsapp_username.clone(),
        contact.whatsapp_profile_name.clone(),
    ]
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Writes contacts in either format.
pub enum Writer<W: Write> {
    Csv {
        writer: Box<csv::Writer<W>>,
        keys: Vec<String>,
    },
    Jsonl(W),
}

impl<W: Write> Writer<W> {
    /// A writer; CSV needs every metadata key up front, for its header.
    pub fn new(out: W, format: Format, keys: Vec<String>) -> anyhow::Result<Self> {
        match format {
            Format::Jsonl => Ok(Self::Jsonl(out)),
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(out);
                let mut header = vec![
                    PHONE.to_owned(),
                    COUNTRY.to_owned(),
                    LAST_MESSAGE.to_owned(),
                ];
                header.extend(IDENTITY.map(str::to_owned));
                header.extend(MESSAGING.map(str::to_owned));
                header.extend(keys.iter().map(|key| format!("{METADATA_PREFIX}{key}")));
                writer.write_record(&header)?;
                Ok(Self::Csv {
                    writer: Box::new(writer),
                    keys,
                })
            }
        }
    }

    /// Writes `contact` with its windows and marketing choices.
    pub fn write(&mut self, contact: &Model, messaging: &MessagingRows) -> anyhow::Result<()> {
        let metadata = contact.metadata.as_object();
        match self {
            Self::Csv { writer, keys } => {
                let mut record = vec![
                    contact.phone_number.clone().unwrap_or_default(),
                    contact.country_code.clone().unwrap_or_default(),
                    contact
                        .last_whatsapp_message_at
                        .map(time)
                        .unwrap_or_default(),
                ];
                // Names are free text a spreadsheet could run: guarded like metadata.
                record.extend(
                    identity_of(contact).map(|v| guard(&v.unwrap_or_default()).into_owned()),
                );
                record.push(contact.blocked.to_string());
                record.push(serde_json::to_string(&windows_out(messaging))?);
                record.push(serde_json::to_string(&preferences_out(messaging))?);
                record.extend(keys.iter().map(|key| {
                    let value = metadata
                        .and_then(|m| m.get(key))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    guard(value).into_owned()
                }));
                writer.write_record(&record)?;
            }
            Self::Jsonl(out) => {
                let line = JsonContact {
                    phone_number: contact.phone_number.clone(),
                    country_code: contact.country_code.clone(),
                    last_whatsapp_message_at: contact.last_whatsapp_message_at.map(time),
                    metadata: Some(metadata.cloned().unwrap_or_default()),
                    whatsapp_user_id: contact.whatsapp_user_id.clone(),
                    parent_whatsapp_user_id: contact.parent_whatsapp_user_id.clone(),
                    whatsapp_username: contact.whatsapp_username.clone(),
                    whatsapp_profile_name: contact.whatsapp_profile_name.clone(),
                    blocked: Some(contact.blocked),
                    whatsapp_windows: Some(windows_out(messaging)),
                    marketing_preferences: Some(preferences_out(messaging)),
                };
                serde_json::to_writer(&mut *out, &line)?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Csv { mut writer, .. } => writer.flush()?,
            Self::Jsonl(mut out) => out.flush()?,
        }
        Ok(())
    }
}

/// The rejects file: rejected rows as they were, in the input's format.
pub enum Rejects<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Jsonl(W),
}

impl<W: Write> Rejects<W> {
    pub fn new(out: W, header: Option<&csv::StringRecord>) -> anyhow::Result<Self> {
        match header {
            Some(header) => {
                let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(out);
                writer.write_record(header)?;
                Ok(Self::Csv(Box::new(writer)))
            }
            None => Ok(Self::Jsonl(out)),
        }
    }

    pub fn write(&mut self, raw: &RawRow) -> anyhow::Result<()> {
        match (self, raw) {
            (Self::Csv(writer), RawRow::Csv(record)) => writer.write_record(record)?,
            (Self::Csv(_), RawRow::Line(_)) => {}
            (Self::Jsonl(out), RawRow::Line(text)) => writeln!(out, "{text}")?,
            (Self::Jsonl(_), RawRow::Csv(_)) => {}
        }
        Ok(())
    }

    pub fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Csv(mut writer) => writer.flush()?,
            Self::Jsonl(mut out) => out.flush()?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str, format: Format) -> Vec<Row> {
        Rows::open(text.as_bytes(), format)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn csv_rows_keep_their_line_numbers_and_metadata_columns() {
        let rows = rows(
            "phoneNumber,countryCode,lastWhatsappMessageAt,metadata.name\n\
             +56912345678,CL,2026-11-24T12:00:00Z,Ana\n\
             912345679,CL,,\n\
             +56912345670,,yesterday,Bo\n\
             +56912345671,CL\n",
            Format::Csv,
        );
        assert_eq!(
            rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
        let first = rows[0].input.as_ref().unwrap();
        assert_eq!(first.metadata.as_ref().unwrap()["name"], "Ana");
        assert!(first.last_whatsapp_message_at.is_some());
        let second = rows[1].input.as_ref().unwrap();
        assert_eq!(second.metadata, Some(Map::new()));
        assert!(rows[2].input.as_ref().unwrap_err().contains("RFC 3339"));
        assert!(rows[3].input.as_ref().unwrap_err().contains("2 fields"));
    }

    #[test]
    fn csv_headers_must_be_known_and_name_the_phone() {
        for header in [
            "phone,countryCode\n",
            "countryCode\n",
            "phoneNumber,metadata.\n",
        ] {
            assert!(
                Rows::open(header.as_bytes(), Format::Csv).is_err(),
                "{header}"
            );
        }
    }

    #[test]
    fn jsonl_rows_skip_blank_lines_and_refuse_unknown_fields() {
        let rows = rows(
            "{\"phoneNumber\":\"+56912345678\",\"metadata\":{\"a\":\"b\"}}\n\n\
             {\"phoneNumber\":\"+56912345679\",\"phone\":\"x\"}\n\
             not json\n",
            Format::Jsonl,
        );
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 3, 4]);
        assert!(rows[0].input.is_ok());
        assert!(
            rows[1]
                .input
                .as_ref()
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(rows[2].input.is_err());
    }
}
