//! The messaging state a contacts file carries — windows per business number, marketing
//! choices, the block — validated, and written for a batch of imported contacts so that
//! export → import gives the same contacts.

use chrono::{DateTime, Utc};
use entity::{marketing_preference, whatsapp_window};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{input, policy::MessagingRows, windows};
use crate::error::{AppError, AppResult};

/// Rows per multi-row insert: three or four values each, well under both backends' limits.
const INSERT_ROWS: usize = 2_000;

/// A window as a file gives it: `(businessPhoneNumberId, lastInboundAt)`.
pub type WindowEntry = (Option<String>, DateTime<Utc>);
/// A marketing choice as a file gives it: `(businessPhoneNumberId, optedOut, at)`.
pub type PreferenceEntry = (Option<String>, bool, DateTime<Utc>);

/// As a file says it: `None` fields were not given and keep what is stored.
#[derive(Debug, Clone, Default)]
pub struct MessagingInput {
    /// A `None` number is the window of no number.
    pub windows: Option<Vec<WindowEntry>>,
    /// A `None` number is a choice for all numbers.
    pub preferences: Option<Vec<PreferenceEntry>>,
    pub blocked: Option<bool>,
}

/// Validated: numbers as stored keys, times at storage precision, one entry per number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagingState {
    pub windows: Option<Vec<(String, DateTime<Utc>)>>,
    pub preferences: Option<Vec<(String, bool, DateTime<Utc>)>>,
    pub blocked: Option<bool>,
}

impl MessagingState {
    pub fn parse(input: MessagingInput, prefix: &str, now: DateTime<Utc>) -> AppResult<Self> {
        let windows_field = input::path(prefix, "whatsappWindows");
        let windows = input
            .windows
            .map(|list| {
                let list = list
                    .into_iter()
                    .map(|(number, at)| {
                        Ok((key(number, &windows_field)?, time(at, now, &windows_field)?))
                    })
                    .collect::<AppResult<Vec<_>>>()?;
                distinct(list, |w| &w.0, &windows_field)
            })
            .transpose()?;
        let preferences_field = input::path(prefix, "marketingPreferences");
        let preferences = input
            .preferences
            .map(|list| {
                let list = list
                    .into_iter()
                    .map(|(number, out, at)| {
                        Ok((
                            key(number, &preferences_field)?,
                            out,
                            time(at, now, &preferences_field)?,
                        ))
                    })
                    .collect::<AppResult<Vec<_>>>()?;
                distinct(list, |p| &p.0, &preferences_field)
            })
            .transpose()?;
        Ok(Self {
            windows,
            preferences,
            blocked: input.blocked,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_none() && self.preferences.is_none()
    }

    /// The windows an import writes, sorted: the listed ones, with a given
    /// `lastWhatsappMessageAt` later than all of them as the window of no number.
    fn effective_windows(
        &self,
        last: Option<DateTime<Utc>>,
    ) -> Option<Vec<(String, DateTime<Utc>)>> {
        let listed = self.windows.as_ref()?;
        let latest = listed.iter().map(|w| w.1).max();
        let unnamed = last.filter(|at| latest.is_none_or(|l| *at > l));
        let mut windows: Vec<_> = listed
            .iter()
            .filter(|(number, _)| unnamed.is_none() || number != windows::UNNAMED)
            .cloned()
            .collect();
        if let Some(at) = unnamed {
            windows.push((windows::UNNAMED.to_owned(), at));
        }
        windows.sort();
        Some(windows)
    }

    /// The contact-level `lastWhatsappMessageAt` this state gives a contact: the latest of
    /// its windows when the file lists them (`None` inside: no window), else not its say.
    pub fn contact_level_time(&self, last: Option<DateTime<Utc>>) -> Option<Option<DateTime<Utc>>> {
        let windows = self.effective_windows(last)?;
        Some(windows.iter().map(|w| w.1).max())
    }

    /// True when importing this state over `stored` changes nothing.
    pub fn matches(&self, last: Option<DateTime<Utc>>, stored: &MessagingRows) -> bool {
        let windows_same = self.effective_windows(last).is_none_or(|wanted| {
            let mut have: Vec<_> = stored
                .windows
                .iter()
                .map(|w| (w.business_phone_number_id.clone(), w.last_inbound_at))
                .collect();
            have.sort();
            have == wanted
        });
        let choices_same = self.preferences.as_ref().is_none_or(|wanted| {
            let mut wanted = wanted.clone();
            wanted.sort();
            let mut have: Vec<_> = stored
                .preferences
                .iter()
                .map(|p| {
                    (
                        p.business_phone_number_id.clone(),
                        p.opted_out,
                        p.recorded_at,
                    )
                })
                .collect();
            have.sort();
            have == wanted
        });
        windows_same && choices_same
    }
}

fn key(number: Option<String>, field: &str) -> AppResult<String> {
    number
        .map(|n| windows::parse_business_number(&n, field))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn time(at: DateTime<Utc>, now: DateTime<Utc>, field: &str) -> AppResult<DateTime<Utc>> {
    input::message_time(at, now, field)
}

/// `list`, refused when two entries name the same number or more business numbers are named
/// than a contact keeps. The entry of no number is kept besides them (as `windows::advance`
/// keeps it), so an export of a contact at the bound imports back.
fn distinct<T>(list: Vec<T>, number: impl Fn(&T) -> &String, field: &str) -> AppResult<Vec<T>> {
    let named = list
        .iter()
        .filter(|item| number(item) != windows::UNNAMED)
        .count();
    if named > windows::MAX_PER_CONTACT {
        return Err(AppError::validation(
            field,
            format!(
                "at most {} business numbers, and the entry of no number",
                windows::MAX_PER_CONTACT
            ),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for item in &list {
        if !seen.insert(number(item).clone()) {
            return Err(AppError::validation(
                field,
                "a business number appears twice",
            ));
        }
    }
    Ok(list)
}

/// An imported contact's messaging state: its id, the state its row gives, the row's
/// `lastWhatsappMessageAt`, and whether the contact was just created (nothing stored to
/// replace, and its contact-level time already [`MessagingState::contact_level_time`]).
pub type ImportedState<'a> = (Uuid, &'a MessagingState, Option<DateTime<Utc>>, bool);

/// Replaces the windows and choices of imported contacts where the file gave them, in a few
/// statements per batch. A given `lastWhatsappMessageAt` later than every listed window is
/// the window of no number (as a time written by hand); the contact-level time becomes the
/// latest window.
pub async fn replace_many<C: ConnectionTrait>(
    conn: &C,
    rows: &[ImportedState<'_>],
) -> AppResult<()> {
    let with_windows: Vec<_> = rows.iter().filter(|r| r.1.windows.is_some()).collect();
    // Only contacts that existed have windows to remove and a time to roll up again.
    let existing: Vec<Uuid> = with_windows.iter().filter(|r| !r.3).map(|r| r.0).collect();
    if !existing.is_empty() {
        whatsapp_window::Entity::delete_many()
            .filter(whatsapp_window::Column::ContactId.is_in(existing.iter().copied()))
            .exec(conn)
            .await?;
    }
    if !with_windows.is_empty() {
        let windows: Vec<_> = with_windows
            .iter()
            .flat_map(|(id, state, last, _)| {
                state
                    .effective_windows(*last)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(number, at)| (*id, number, at))
            })
            .collect();
        for chunk in windows.chunks(INSERT_ROWS) {
            let models = chunk
                .iter()
                .map(|(id, number, at)| whatsapp_window::ActiveModel {
                    contact_id: Set(*id),
                    business_phone_number_id: Set(number.clone()),
                    last_inbound_at: Set(*at),
                });
            whatsapp_window::Entity::insert_many(models)
                .exec_without_returning(conn)
                .await?;
        }
    }
    windows::roll_up_many(conn, existing).await?;
    let with_choices: Vec<_> = rows.iter().filter(|r| r.1.preferences.is_some()).collect();
    if !with_choices.is_empty() {
        marketing_preference::Entity::delete_many()
            .filter(marketing_preference::Column::ContactId.is_in(with_choices.iter().map(|r| r.0)))
            .exec(conn)
            .await?;
        let choices: Vec<_> = with_choices
            .iter()
            .flat_map(|(id, state, _, _)| {
                state
                    .preferences
                    .iter()
                    .flatten()
                    .map(move |(number, out, at)| (*id, number.clone(), *out, *at))
            })
            .collect();
        for chunk in choices.chunks(INSERT_ROWS) {
            let models =
                chunk
                    .iter()
                    .map(|(id, number, out, at)| marketing_preference::ActiveModel {
                        contact_id: Set(*id),
                        business_phone_number_id: Set(number.clone()),
                        opted_out: Set(*out),
                        recorded_at: Set(*at),
                    });
            marketing_preference::Entity::insert_many(models)
                .exec_without_returning(conn)
                .await?;
        }
    }
    Ok(())
}
