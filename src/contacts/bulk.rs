//! The bulk upsert engine, shared by `importContacts` and the command-line import: rows
//! upserted in one transaction with multi-row statements, rows equal to what is stored not
//! written at all; and the export read in id order, one chunk at a time.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::contact::{Column, Entity, Model};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Statement, TransactionTrait,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    filter::ContactFilter,
    identity,
    input::NewContact,
    messaging_state,
    reads::messaging_rows_on,
    service::{ContactService, change},
    windows,
    writes::contact_row,
};
use crate::{
    error::{AppError, AppResult},
    events::{ChangeKind, ContactChange},
};

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's bound-parameter limits
/// (13 per row).
pub const BATCH_ROWS: usize = 1000;

/// What a bulk write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub created: usize,
    pub updated: usize,
    /// Rows equal to what was stored: not written at all, so re-running an import is a no-op.
    pub unchanged: usize,
}

impl BatchReport {
    pub fn add(&mut self, other: Self) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// What [`ContactService::upsert_rows`] did: the rows written, and the rows the database
/// refused, by position in the rows given.
#[derive(Debug, Default)]
pub struct BulkOutcome {
    pub report: BatchReport,
    pub refused: Vec<(usize, AppError)>,
}

impl ContactService {
    /// The bulk upsert engine. Upserts `contacts` in one transaction (one commit, one sync),
    /// in order: a row naming a phone number or WhatsApp user id an earlier row named is
    /// applied after it. When the database refuses a row (a constraint, a conflict), the
    /// rows are written again in one transaction, each under its own savepoint, so only the
    /// refused rows fail. The call fails only when the database is out of reach.
    pub async fn upsert_rows(&self, contacts: &[NewContact]) -> AppResult<BulkOutcome> {
        let now = self.now();
        let refs: Vec<&NewContact> = contacts.iter().collect();
        let together = async {
            let txn = self.begin_write().await?;
            let mut changes = Vec::with_capacity(contacts.len());
            let mut report = BatchReport::default();
            for round in rounds(&refs) {
                for chunk in round.chunks(BATCH_ROWS) {
                    let (written, announced) = upsert_on(&txn, chunk, now).await?;
                    report.add(written);
                    changes.extend(announced);
                }
            }
            self.commit_announcing(txn, &changes).await?;
            Ok::<_, AppError>(report)
        };
        match together.await {
            Ok(report) => Ok(BulkOutcome {
                report,
                refused: Vec::new(),
            }),
            Err(err @ AppError::Unavailable(_)) => Err(err),
            Err(_) => self.upsert_each(&refs, now).await,
        }
    }

    /// [`Self::upsert_rows`] for rows that must all be written: any refusal fails the call.
    pub async fn upsert_batch(&self, contacts: &[NewContact]) -> AppResult<BatchReport> {
        let mut outcome = self.upsert_rows(contacts).await?;
        match outcome.refused.pop() {
            Some((_, err)) => Err(err),
            None => Ok(outcome.report),
        }
    }

    /// Each row under its own savepoint of one transaction.
    async fn upsert_each(
        &self,
        contacts: &[&NewContact],
        now: DateTime<Utc>,
    ) -> AppResult<BulkOutcome> {
        let txn = self.begin_write().await?;
        let mut changes = Vec::new();
        let mut outcome = BulkOutcome::default();
        for (position, contact) in contacts.iter().enumerate() {
            let savepoint = txn.begin().await?;
            match upsert_on(&savepoint, &[*contact], now).await {
                Ok((report, announced)) => {
                    savepoint.commit().await?;
                    outcome.report.add(report);
                    changes.extend(announced);
                }
                Err(err @ AppError::Unavailable(_)) => return Err(err),
                Err(err) => {
                    savepoint.rollback().await?;
                    outcome.refused.push((position, err));
                }
            }
        }
        self.commit_announcing(txn, &changes).await?;
        Ok(outcome)
    }

    /// Refreshes the planner's statistics of the contacts table, after a bulk import: without
    /// them PostgreSQL plans full scans over the new rows until autovacuum catches up, and
    /// SQLite has none at all. SQLite samples at most 1,000 rows of each index
    /// (`analysis_limit`), so this stays well under a second at any size.
    ///
    /// On PostgreSQL it also merges the metadata GIN index's pending list, where the import's
    /// entries wait until autovacuum: every metadata search reads that list whole (the 10M
    /// benchmark found 345 pages read by each search for an absent pair, 3.8 ms instead of
    /// 0.05). Best effort: a role that does not own the index keeps the list for autovacuum.
    pub async fn analyze(&self) -> AppResult<()> {
        let write = &self.db().write;
        if self.db().backend() == DbBackend::Postgres {
            write.execute_unprepared("ANALYZE contacts").await?;
            let merge = "SELECT gin_clean_pending_list('idx_contacts_metadata'::regclass)";
            if let Err(err) = write.execute_unprepared(merge).await {
                tracing::warn!(error = %err, "metadata index pending list left to autovacuum");
            }
        } else {
            write
                .execute_unprepared("PRAGMA analysis_limit = 1000")
                .await?;
            write.execute_unprepared("ANALYZE contacts").await?;
            write
                .execute_unprepared("ANALYZE contact_metadata_entries")
                .await?;
        }
        Ok(())
    }

    /// Every metadata key in use, sorted: the columns of a CSV export.
    pub async fn metadata_keys(&self) -> AppResult<Vec<String>> {
        let sql = match self.db().backend() {
            DbBackend::Postgres => {
                "SELECT DISTINCT jsonb_object_keys(metadata) AS key FROM contacts ORDER BY key"
            }
            // The entries' primary key starts with the key: a walk of the index, no JSON.
            _ => "SELECT DISTINCT key FROM contact_metadata_entries ORDER BY key",
        };
        let rows = self
            .db()
            .read
            .query_all_raw(Statement::from_string(self.db().backend(), sql))
            .await?;
        Ok(rows
            .iter()
            .map(|row| row.try_get::<String>("", "key"))
            .collect::<Result<_, _>>()?)
    }

    /// Up to `limit` contacts matching `filter` with an id after `after`, in id order: an
    /// export reads chunk after chunk, in constant memory, without holding a transaction open.
    pub async fn export_chunk(
        &self,
        filter: &ContactFilter,
        now: DateTime<Utc>,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Model>> {
        let filter = self.with_metadata_probe_for_list(filter).await?;
        let mut query = Entity::find().filter(filter.condition(self.db().backend(), now));
        if let Some(after) = after {
            query = query.filter(Column::Id.gt(after));
        }
        Ok(query
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(&self.db().read)
            .await?)
    }
}

/// `contacts` in rounds, in order, no phone number or WhatsApp user id twice in a round (one
/// statement cannot change a row twice): a row goes one round after the last round holding
/// an identity it names, so later rows are applied after earlier ones.
fn rounds<'a>(contacts: &[&'a NewContact]) -> Vec<Vec<&'a NewContact>> {
    let mut last_round: HashMap<(bool, &str), usize> = HashMap::new();
    let mut rounds: Vec<Vec<&NewContact>> = Vec::new();
    for &contact in contacts {
        let keys = [
            contact.phone.as_ref().map(|p| (true, p.e164.as_str())),
            contact.whatsapp.user_id.as_deref().map(|id| (false, id)),
        ];
        let round = keys
            .iter()
            .flatten()
            .filter_map(|key| last_round.get(key).map(|r| r + 1))
            .max()
            .unwrap_or(0);
        for key in keys.into_iter().flatten() {
            last_round.insert(key, round);
        }
        if rounds.len() <= round {
            rounds.push(Vec::new());
        }
        rounds[round].push(contact);
    }
    rounds
}

/// Upserts `contacts` (distinct identities, at most [`BATCH_ROWS`]) on `conn`: rows matched by
/// phone number alone in two multi-row statements (read what is stored, write what differs);
/// rows carrying a WhatsApp identity one at a time, matched by BSUID first. Returns what was
/// done and the changes to announce once committed.
async fn upsert_on<'a, C: ConnectionTrait>(
    conn: &C,
    contacts: &[&'a NewContact],
    now: DateTime<Utc>,
) -> AppResult<(BatchReport, Vec<ContactChange>)> {
    let mut report = BatchReport::default();
    let mut changes = Vec::with_capacity(contacts.len());
    let (mut by_phone, by_identity): (Vec<&NewContact>, Vec<&NewContact>) = contacts
        .iter()
        .partition(|contact| contact.phone.is_some() && contact.whatsapp.is_empty());
    // In index order: the unique phone index is written (and read) page after page.
    by_phone.sort_unstable_by_key(|&contact| contact.phone.as_ref().map(|p| p.e164.as_str()));
    let stored = stored_by_phone(conn, &by_phone).await?;
    // The stored windows and choices of the rows whose file gives theirs, to tell an
    // unchanged row from a changed one.
    let given: Vec<Uuid> = by_phone
        .iter()
        .filter(|contact| !contact.messaging.is_empty())
        .filter_map(|contact| stored.get(contact.phone.as_ref()?.e164.as_str()))
        .map(|row| row.id)
        .collect();
    let stored_messaging = messaging_rows_on(conn, &given).await?;
    // The messaging state to write (id, state, lastWhatsappMessageAt), and the message times
    // written by hand with no windows given (id, at, created).
    let mut states = Vec::new();
    let mut message_times = Vec::new();
    let mut note = |id: Uuid, contact: &'a NewContact, created: bool| {
        let last = contact.last_whatsapp_message_at;
        if !contact.messaging.is_empty() {
            states.push((id, &contact.messaging, last, created));
        }
        if let (None, Some(at)) = (&contact.messaging.windows, last) {
            message_times.push((id, at, created));
        }
    };
    let mut created = Vec::new();
    let mut rows = Vec::new();
    for contact in by_phone {
        let Some(phone) = &contact.phone else {
            continue;
        };
        let Some(current) = stored.get(phone.e164.as_str()) else {
            let mut row = contact_row(contact, Uuid::now_v7(), now, now);
            let last = contact.last_whatsapp_message_at;
            if let Some(at) = contact.messaging.contact_level_time(last) {
                row.last_whatsapp_message_at = at;
            }
            note(row.id, contact, true);
            changes.push(change(ChangeKind::Created, row.id, now));
            created.push(row);
            report.created += 1;
            continue;
        };
        let wanted = merged(contact, current);
        let stored_state = stored_messaging
            .get(&current.id)
            .cloned()
            .unwrap_or_default();
        if unchanged(contact, &wanted, current, &stored_state) {
            report.unchanged += 1;
            continue;
        }
        note(current.id, contact, false);
        changes.push(change(ChangeKind::Updated, current.id, now));
        rows.push(Model {
            updated_at: now,
            ..wanted
        });
        report.updated += 1;
    }
    write_rows(conn, created, rows).await?;
    for contact in by_identity {
        let (mut row, created) = identity::upsert(conn, contact, now).await?;
        let last = contact.last_whatsapp_message_at;
        // Rolled up again whether new or not: the identity path wrote the given time.
        if !contact.messaging.is_empty() {
            states.push((row.id, &contact.messaging, last, false));
        }
        if let (None, Some(at)) = (&contact.messaging.windows, last) {
            windows::written_by_hand(conn, &mut row, Some(at), created).await?;
        }
        let kind = if created {
            report.created += 1;
            ChangeKind::Created
        } else {
            report.updated += 1;
            ChangeKind::Updated
        };
        changes.push(change(kind, row.id, now));
    }
    windows::written_by_hand_many(conn, &message_times).await?;
    messaging_state::replace_many(conn, &states).await?;
    Ok((report, changes))
}

/// True when writing `contact` over `current` (as `wanted`) changes nothing, its windows and
/// choices included. With windows given, the contact-level time is theirs (compared there).
fn unchanged(
    contact: &NewContact,
    wanted: &Model,
    current: &Model,
    stored_state: &super::policy::MessagingRows,
) -> bool {
    let last = contact.last_whatsapp_message_at;
    let messaging_same =
        contact.messaging.is_empty() || contact.messaging.matches(last, stored_state);
    let row_same = if contact.messaging.windows.is_some() {
        Model {
            last_whatsapp_message_at: current.last_whatsapp_message_at,
            ..wanted.clone()
        } == *current
    } else {
        wanted == current
    };
    row_same && messaging_same
}

/// The stored rows of these contacts' phone numbers, by number.
async fn stored_by_phone<C: ConnectionTrait>(
    conn: &C,
    contacts: &[&NewContact],
) -> AppResult<HashMap<String, Model>> {
    if contacts.is_empty() {
        return Ok(HashMap::new());
    }
    let phones = contacts
        .iter()
        .filter_map(|contact| Some(contact.phone.as_ref()?.e164.clone()));
    Ok(Entity::find()
        .filter(Column::PhoneNumber.is_in(phones))
        .all(conn)
        .await?
        .into_iter()
        .filter_map(|row| Some((row.phone_number.clone()?, row)))
        .collect())
}

/// `current` with what `contact` gives written over it. Like `upsertContact`, a missing
/// country code, `metadata` or message time keeps the stored one.
fn merged(contact: &NewContact, current: &Model) -> Model {
    let country_code = match &contact.phone {
        Some(phone) if phone.country_given => phone.country_code.clone(),
        _ => current.country_code.clone(),
    };
    Model {
        country_code,
        metadata: contact
            .metadata
            .as_ref()
            .map_or_else(|| current.metadata.clone(), |m| m.to_json()),
        last_whatsapp_message_at: contact
            .last_whatsapp_message_at
            .or(current.last_whatsapp_message_at),
        blocked: contact.messaging.blocked.unwrap_or(current.blocked),
        ..contact_row(contact, current.id, current.created_at, current.updated_at)
    }
}

/// Two multi-row INSERTs: the new rows, then the changed ones resolved on the phone number.
///
/// The new rows are a plain insert, never an upsert: they were read as absent, and another
/// writer may have committed the number since (PostgreSQL's transactions overlap). An upsert
/// would then overwrite that writer's contact while the log names an id no contact has; the
/// insert's unique violation instead fails the whole transaction, and the engine writes the
/// rows again one by one, reading the number anew, so nothing is lost or logged wrongly.
/// On SQLite the insert is `INSERT OR FAIL`: a statement that may abort makes SQLite copy
/// every page it touches into a statement journal first, which for a multi-row insert costs
/// about as much as the insert.
async fn write_rows<C: ConnectionTrait>(
    conn: &C,
    created: Vec<Model>,
    changed: Vec<Model>,
) -> AppResult<()> {
    let backend = conn.get_database_backend();
    if !created.is_empty() {
        let rows = created
            .into_iter()
            .map(|row| row.into_active_model().reset_all());
        let statement = backend.build(&Entity::insert_many(rows).into_query());
        let statement = match backend {
            DbBackend::Sqlite => Statement {
                sql: statement
                    .sql
                    .replacen("INSERT INTO", "INSERT OR FAIL INTO", 1),
                ..statement
            },
            _ => statement,
        };
        conn.execute_raw(statement).await?;
    }
    if changed.is_empty() {
        return Ok(());
    }
    let on_conflict = OnConflict::column(Column::PhoneNumber)
        .update_columns([
            Column::CountryCode,
            Column::Metadata,
            Column::LastWhatsappMessageAt,
            Column::Blocked,
            Column::UpdatedAt,
        ])
        .to_owned();
    let rows = changed
        .into_iter()
        .map(|row| row.into_active_model().reset_all());
    Entity::insert_many(rows)
        .on_conflict(on_conflict)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
