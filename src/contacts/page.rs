//! Relay page requests (`first`/`after`, `last`/`before`) validated into a keyset window.

use entity::contact::{Column, Model};
use sea_orm::{ColumnTrait, Condition, DbBackend};

use super::{
    cursor::Cursor,
    order::{self, ContactOrder, Direction, OrderField, Segment},
};
use crate::error::{AppError, AppResult};

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

/// The pagination arguments as sent.
#[derive(Debug, Clone, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

/// Which way a page is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// `first` rows after `after`.
    Forward,
    /// `last` rows before `before`.
    Backward,
}

/// A validated page request.
#[derive(Debug, Clone)]
pub struct PageSpec {
    pub order: ContactOrder,
    pub reading: Reading,
    pub limit: u64,
    pub after: Option<Cursor>,
    pub before: Option<Cursor>,
}

/// One page of rows, in the requested order.
#[derive(Debug, Clone)]
pub struct Page {
    pub order: OrderField,
    pub rows: Vec<Model>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl Page {
    /// A page of no rows, for a connection whose rows nobody selected.
    pub fn empty(order: OrderField) -> Self {
        Self {
            order,
            rows: Vec::new(),
            has_next_page: false,
            has_previous_page: false,
        }
    }

    pub fn cursor_of(&self, row: &Model) -> String {
        Cursor {
            field: self.order,
            value: self.order.value_of(row),
            id: row.id,
        }
        .encode()
    }
}

fn page_size(value: Option<i32>, arg: &str) -> AppResult<Option<u64>> {
    match value {
        Some(n) if !(0..=MAX_PAGE_SIZE).contains(&n) => Err(AppError::validation(
            arg,
            format!("`{arg}` must be between 0 and {MAX_PAGE_SIZE}"),
        )),
        Some(n) => Ok(Some(u64::try_from(n).unwrap_or(0))),
        None => Ok(None),
    }
}

impl PageSpec {
    pub fn parse(args: PageArgs, order: ContactOrder) -> AppResult<Self> {
        let first = page_size(args.first, "first")?;
        let last = page_size(args.last, "last")?;
        let after = args
            .after
            .map(|raw| Cursor::decode(&raw, order.field, "after"))
            .transpose()?;
        let before = args
            .before
            .map(|raw| Cursor::decode(&raw, order.field, "before"))
            .transpose()?;
        let (reading, limit) = match (first, last) {
            (Some(_), Some(_)) => {
                return Err(AppError::validation(
                    "last",
                    "pass either `first` or `last`, not both",
                ));
            }
            (None, Some(n)) => (Reading::Backward, n),
            (Some(n), None) => (Reading::Forward, n),
            // `before` alone reads backwards, like GitHub's API.
            (None, None) if before.is_some() && after.is_none() => {
                (Reading::Backward, DEFAULT_PAGE_SIZE)
            }
            (None, None) => (Reading::Forward, DEFAULT_PAGE_SIZE),
        };
        Ok(Self {
            order,
            reading,
            limit,
            after,
            before,
        })
    }
}

impl PageSpec {
    pub fn is_backward(&self) -> bool {
        self.reading == Reading::Backward
    }

    /// The direction rows are read in: the order's, or its reverse for `last`/`before`.
    pub fn walk_direction(&self) -> Direction {
        if self.is_backward() {
            self.order.direction.reversed()
        } else {
            self.order.direction
        }
    }

    fn beyond(
        &self,
        segment: Segment,
        cursor: &Cursor,
        after: bool,
        backend: DbBackend,
    ) -> Option<Condition> {
        order::seek(
            self.order.field,
            self.order.direction,
            segment,
            (&cursor.value, cursor.id),
            after,
            backend,
        )
    }

    /// The rows of `segment` strictly between `after` and `before`; `None` when there are none.
    pub fn between_cursors(&self, segment: Segment, backend: DbBackend) -> Option<Condition> {
        let mut cond = segment.condition(self.order.field, backend);
        if let Some(after) = &self.after {
            cond = cond.add(self.beyond(segment, after, true, backend)?);
        }
        if let Some(before) = &self.before {
            cond = cond.add(self.beyond(segment, before, false, backend)?);
        }
        Some(cond)
    }

    /// The cursor the page starts from: rows on its far side (probed per segment with
    /// [`Self::behind_start`]) or the cursor's own row make `hasPreviousPage` (or
    /// `hasNextPage` when reading backwards) true.
    fn start_cursor(&self) -> Option<(&Cursor, bool)> {
        match self.reading {
            Reading::Forward => Some((self.after.as_ref()?, false)),
            Reading::Backward => Some((self.before.as_ref()?, true)),
        }
    }

    /// The rows of `segment` on the far side of the starting cursor; `None` without a cursor
    /// or when the segment has none there. Each segment is probed on its own: joined with OR,
    /// SQLite would gather every row behind the cursor before stopping at the first.
    pub fn behind_start(&self, segment: Segment, backend: DbBackend) -> Option<Condition> {
        let (cursor, after) = self.start_cursor()?;
        let rows = self.beyond(segment, cursor, after, backend)?;
        Some(segment.condition(self.order.field, backend).add(rows))
    }

    /// The starting cursor's own row, as a condition.
    pub fn at_start(&self) -> Option<Condition> {
        let (cursor, _) = self.start_cursor()?;
        Some(Condition::all().add(Column::Id.eq(cursor.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_first_twenty() {
        let spec = PageSpec::parse(PageArgs::default(), ContactOrder::default()).unwrap();
        assert_eq!(
            (spec.reading, spec.limit),
            (Reading::Forward, DEFAULT_PAGE_SIZE)
        );
    }

    #[test]
    fn page_size_bounds() {
        for (first, ok) in [(-1, false), (0, true), (100, true), (101, false)] {
            let args = PageArgs {
                first: Some(first),
                ..Default::default()
            };
            assert_eq!(
                PageSpec::parse(args, ContactOrder::default()).is_ok(),
                ok,
                "{first}"
            );
        }
    }

    #[test]
    fn first_and_last_together_is_an_error() {
        let args = PageArgs {
            first: Some(1),
            last: Some(1),
            ..Default::default()
        };
        assert!(PageSpec::parse(args, ContactOrder::default()).is_err());
    }
}
