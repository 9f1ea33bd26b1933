//! Change-feed pages and their cursors: opaque to clients, base64url of `chg:<position>`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::{changelog::LoggedChange, service::ContactService};
use crate::error::{AppError, AppResult};

/// Changes per page unless `first` says otherwise, and the most it may say.
const DEFAULT_FIRST: i32 = 100;
const MAX_FIRST: i32 = 1_000;

/// One page of `contactChanges`.
#[derive(Debug)]
pub struct FeedPage {
    pub changes: Vec<LoggedChange>,
    pub has_next_page: bool,
    /// The position an empty page resumes from: the cursor sent, else the log's head.
    pub resume_from: i64,
}

impl ContactService {
    /// The changes after cursor `after` (from the oldest kept without one), `first` of them.
    pub async fn change_feed(
        &self,
        after: Option<&str>,
        first: Option<i32>,
    ) -> AppResult<FeedPage> {
        let first = first.unwrap_or(DEFAULT_FIRST);
        if !(1..=MAX_FIRST).contains(&first) {
            return Err(AppError::validation(
                "first",
                format!("`first` must be between 1 and {MAX_FIRST}"),
            ));
        }
        let after = after.map(|raw| decode(raw, "after")).transpose()?;
        let read = self.changes_after(after, first as u64).await?;
        let resume_from = match (after, read.changes.is_empty()) {
            (Some(after), _) => after,
            (None, true) => self.change_head().await?,
            (None, false) => 0,
        };
        Ok(FeedPage {
            changes: read.changes,
            has_next_page: read.has_more,
            resume_from,
        })
    }
}

const PREFIX: &str = "chg:";

/// The cursor naming log position `position`.
pub fn encode(position: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{position}"))
}

/// The position `raw` names; `BAD_USER_INPUT` on `arg` for anything this service did not
/// write (including a `contacts` cursor).
pub fn decode(raw: &str, arg: &str) -> AppResult<i64> {
    let invalid = || AppError::validation(arg, format!("`{arg}` is not a change-feed cursor"));
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.as_bytes())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let position = text
        .strip_prefix(PREFIX)
        .and_then(|digits| digits.parse::<i64>().ok())
        .filter(|position| *position >= 0)
        .ok_or_else(invalid)?;
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode(&encode(42), "after").unwrap(), 42);
        for raw in ["", "chg:1", &URL_SAFE_NO_PAD.encode("chg:-1"), "!!"] {
            match decode(raw, "after") {
                Err(AppError::Validation { field, .. }) => assert_eq!(field, "after"),
                other => panic!("{raw:?} gave {other:?}"),
            }
        }
    }
}
