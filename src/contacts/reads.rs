//! Queries: lookups, keyset pages, counts. All run on the read connections.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{
    contact::{Column, Entity, Model},
    previous_whatsapp_user_id as previous,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
    sea_query::{Expr, Query, QueryStatementBuilder},
};
use uuid::Uuid;

use super::{
    bsuid,
    filter::ContactFilter,
    identity, order,
    page::{Page, PageSpec, Reading},
    phone::{self, PhoneFields},
    policy::MessagingRows,
    preferences,
    service::ContactService,
    windows,
};
use crate::error::AppResult;

/// `contactStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactStats {
    pub total: i64,
    pub whatsapp_window_open: i64,
}

impl ContactService {
    pub async fn get(&self, id: Uuid) -> AppResult<Option<Model>> {
        Ok(Entity::find_by_id(id).one(&self.db.read).await?)
    }

    /// Looks a contact up by any spelling of its number.
    pub async fn get_by_phone(
        &self,
        raw: &str,
        country_code: Option<&str>,
    ) -> AppResult<Option<Model>> {
        let fields = PhoneFields {
            phone_number: "phoneNumber",
            country_code: "countryCode",
        };
        let parsed = phone::parse_phone(raw, country_code, fields)?;
        let found = Entity::find()
            .filter(Column::PhoneNumber.eq(parsed.e164))
            .one(&self.db.read)
            .await?;
        Ok(found)
    }

    /// Looks a contact up by its WhatsApp user id, current or replaced by an identity change.
    pub async fn get_by_whatsapp_user_id(&self, raw: &str) -> AppResult<Option<Model>> {
        let user_id = bsuid::parse_bsuid(raw, "whatsappUserId")?;
        identity::find_user_id(&self.db.read, &user_id, false).await
    }

    /// The BSUIDs a contact held before, oldest first (ties by id).
    pub async fn previous_whatsapp_user_ids(&self, id: Uuid) -> AppResult<Vec<String>> {
        let rows = previous::Entity::find()
            .filter(previous::Column::ContactId.eq(id))
            .order_by_asc(previous::Column::ReplacedAt)
            .order_by_asc(previous::Column::WhatsappUserId)
            .all(&self.db.read)
            .await?;
        Ok(rows.into_iter().map(|row| row.whatsapp_user_id).collect())
    }

    /// The windows and marketing choices of `ids`, in two queries however many ids: what a
    /// page of contacts needs for its messaging fields.
    pub async fn messaging_rows(&self, ids: &[Uuid]) -> AppResult<HashMap<Uuid, MessagingRows>> {
        let mut rows: HashMap<Uuid, MessagingRows> = HashMap::new();
        for window in windows::of_contacts(&self.db.read, ids).await? {
            rows.entry(window.contact_id)
                .or_default()
                .windows
                .push(window);
        }
        for choice in preferences::of_contacts(&self.db.read, ids).await? {
            rows.entry(choice.contact_id)
                .or_default()
                .preferences
                .push(choice);
        }
        Ok(rows)
    }

    /// One page in keyset order; `now` decides the window filter.
    pub async fn list(
        &self,
        filter: &ContactFilter,
        spec: &PageSpec,
        now: DateTime<Utc>,
    ) -> AppResult<Page> {
        let base = filter.condition(self.db.backend(), now);
        let select = Entity::find().filter(base.clone().add(spec.between_cursors()));
        let query = order::apply_order(
            select,
            spec.order.field,
            spec.walk_direction(),
            spec.is_backward(),
            !filter.excludes_never_messaged(),
        );
        let mut rows = query.limit(spec.limit + 1).all(&self.db.read).await?;
        let has_more = rows.len() as u64 > spec.limit;
        rows.truncate(usize::try_from(spec.limit).unwrap_or(usize::MAX));
        let has_behind = match spec.behind_start() {
            Some([beyond, at_cursor]) => {
                self.exists(base.clone().add(beyond)).await?
                    || self.exists(base.add(at_cursor)).await?
            }
            None => false,
        };
        if spec.is_backward() {
            rows.reverse();
        }
        let (has_next_page, has_previous_page) = match spec.reading {
            Reading::Forward => (has_more, has_behind),
            Reading::Backward => (has_behind, has_more),
        };
        Ok(Page {
            order: spec.order.field,
            rows,
            has_next_page,
            has_previous_page,
        })
    }

    async fn exists(&self, cond: Condition) -> AppResult<bool> {
        let found = Entity::find()
            .select_only()
            .column(Column::Id)
            .filter(cond)
            .limit(1);
        Ok(found
            .into_tuple::<Uuid>()
            .one(&self.db.read)
            .await?
            .is_some())
    }

    /// How many contacts match, regardless of pagination.
    pub async fn count(&self, filter: &ContactFilter, now: DateTime<Utc>) -> AppResult<u64> {
        let cond = filter.condition(self.db.backend(), now);
        Ok(Entity::find().filter(cond).count(&self.db.read).await?)
    }

    /// Totals in one statement, so both numbers come from one snapshot; each is its own
    /// `COUNT(*)` subquery, so each can be answered from an index (the open windows from
    /// the last-message index) instead of one scan of the table.
    pub async fn stats(
        &self,
        filter: &ContactFilter,
        now: DateTime<Utc>,
    ) -> AppResult<ContactStats> {
        let backend = self.db.backend();
        let cond = filter.condition(backend, now);
        let count = |cond: Condition| {
            Entity::find()
                .select_only()
                .column_as(Expr::cust("COUNT(*)"), "n")
                .filter(cond)
                .into_query()
        };
        let open = cond.clone().add(filter.window_open_condition(backend, now));
        let statement = Query::select()
            .expr_as(
                Expr::SubQuery(None, Box::new(count(cond).into_sub_query_statement())),
                "total",
            )
            .expr_as(
                Expr::SubQuery(None, Box::new(count(open).into_sub_query_statement())),
                "open",
            )
            .to_owned();
        let row = self
            .db
            .read
            .query_one_raw(backend.build(&statement))
            .await?;
        let (total, whatsapp_window_open) = match row {
            Some(row) => (
                row.try_get::<i64>("", "total")?,
                row.try_get::<i64>("", "open")?,
            ),
            None => (0, 0),
        };
        Ok(ContactStats {
            total,
            whatsapp_window_open,
        })
    }
}

/// [`ContactService::messaging_rows`] on `conn` (a write transaction, for an import).
pub(super) async fn messaging_rows_on<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
) -> AppResult<HashMap<Uuid, MessagingRows>> {
    let mut rows: HashMap<Uuid, MessagingRows> = HashMap::new();
    if ids.is_empty() {
        return Ok(rows);
    }
    for window in windows::of_contacts(conn, ids).await? {
        rows.entry(window.contact_id)
            .or_default()
            .windows
            .push(window);
    }
    for choice in preferences::of_contacts(conn, ids).await? {
        rows.entry(choice.contact_id)
            .or_default()
            .preferences
            .push(choice);
    }
    Ok(rows)
}
