//! Queries: lookups, keyset pages, counts. All run on the read connections.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{
    contact::{Column, Entity, Model},
    previous_whatsapp_user_id as previous,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Select, Statement,
};
use uuid::Uuid;

use super::{
    bsuid, counts,
    filter::{ContactFilter, MetadataProbe},
    identity,
    order::{self, OrderField, Segment},
    page::{Page, PageSpec, Reading},
    phone::{self, PhoneFields},
    policy::MessagingRows,
    preferences,
    rows::{self, Lookup},
    service::ContactService,
    windows,
};
use crate::error::AppResult;

/// Whether rows without a value in the order's column can match `filter` (else the walk
/// skips the null segment, which would read them all only to filter them out).
fn nulls_possible(filter: &ContactFilter, field: OrderField) -> bool {
    match field {
        OrderField::LastWhatsappMessageAt => !filter.excludes_never_messaged(),
        OrderField::PhoneNumber => !filter.excludes_missing_phone(),
        OrderField::CreatedAt | OrderField::UpdatedAt => false,
    }
}

fn segments(filter: &ContactFilter, spec: &PageSpec) -> &'static [Segment] {
    let field = spec.order.field;
    Segment::walk(field, spec.is_backward(), nulls_possible(filter, field))
}

/// One ordered SELECT per segment the page may reach, in walk order.
fn page_selects(
    backend: DbBackend,
    filter: &ContactFilter,
    spec: &PageSpec,
    now: DateTime<Utc>,
) -> Vec<Select<Entity>> {
    let base = filter.condition(backend, now);
    segments(filter, spec)
        .iter()
        .filter_map(|&segment| {
            let rows = spec.between_cursors(segment, backend)?;
            let select = Entity::find().filter(base.clone().add(rows));
            let direction = spec.walk_direction();
            Some(order::apply_order(
                select,
                spec.order.field,
                direction,
                segment,
            ))
        })
        .collect()
}

/// The existence probes behind the page's starting cursor (none without one): each segment
/// of the order in its own index order, so every probe is one index seek, then the cursor's
/// own row by id.
fn behind_probes(
    backend: DbBackend,
    filter: &ContactFilter,
    spec: &PageSpec,
    now: DateTime<Utc>,
) -> Vec<Select<Entity>> {
    let base = filter.condition(backend, now);
    let field = spec.order.field;
    let probe = |cond: Condition| exists_query(base.clone().add(cond));
    let mut probes: Vec<Select<Entity>> =
        Segment::walk(field, false, nulls_possible(filter, field))
            .iter()
            .filter_map(|&segment| {
                let rows = spec.behind_start(segment, backend)?;
                let direction = spec.walk_direction().reversed();
                Some(order::apply_order(probe(rows), field, direction, segment))
            })
            .collect();
    probes.extend(spec.at_start().map(probe));
    probes
}

fn exists_query(cond: Condition) -> Select<Entity> {
    Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(cond)
        .limit(1)
}

impl ContactService {
    pub async fn get(&self, id: Uuid) -> AppResult<Option<Model>> {
        let stmt = Lookup::Id.statement(self.db.backend(), id.into());
        rows::one_by(&self.db.read, stmt).await
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
        let stmt = Lookup::PhoneNumber.statement(self.db.backend(), parsed.e164.into());
        rows::one_by(&self.db.read, stmt).await
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
        messaging_rows_on(&self.db.read, ids).await
    }

    /// The windows of `ids`, each contact's newest first, in one query.
    pub async fn windows_of(
        &self,
        ids: &[Uuid],
    ) -> AppResult<HashMap<Uuid, Vec<entity::whatsapp_window::Model>>> {
        let rows = windows::of_contacts(&self.db.read, ids).await?;
        Ok(by_contact(rows, |window| window.contact_id))
    }

    /// The marketing choices of `ids`, in one query.
    pub async fn preferences_of(
        &self,
        ids: &[Uuid],
    ) -> AppResult<HashMap<Uuid, Vec<entity::marketing_preference::Model>>> {
        let rows = preferences::of_contacts(&self.db.read, ids).await?;
        Ok(by_contact(rows, |choice| choice.contact_id))
    }

    /// One page in keyset order; `now` decides the window filter. Each segment of the order
    /// (valued rows, then rows without a value) is one index range, read until the page is full.
    pub async fn list(
        &self,
        filter: &ContactFilter,
        spec: &PageSpec,
        now: DateTime<Utc>,
    ) -> AppResult<Page> {
        let filter = self.with_metadata_probe_for_list(filter).await?;
        let filter = self.with_window_probe_for_list(filter, now).await?;
        let filter = &self
            .with_prefix_probe_for_list(filter, spec.order.field)
            .await?;
        let wanted = usize::try_from(spec.limit).unwrap_or(usize::MAX);
        let mut rows = Vec::new();
        for select in page_selects(self.db.backend(), filter, spec, now) {
            let room = wanted.saturating_add(1).saturating_sub(rows.len());
            if room == 0 {
                break;
            }
            let room = u64::try_from(room).unwrap_or(u64::MAX);
            rows.extend(rows::all(&self.db.read, select.limit(room)).await?);
        }
        let has_more = rows.len() > wanted;
        rows.truncate(wanted);
        let mut has_behind = false;
        for probe in behind_probes(self.db.backend(), filter, spec, now) {
            if probe
                .into_tuple::<Uuid>()
                .one(&self.db.read)
                .await?
                .is_some()
            {
                has_behind = true;
                break;
            }
        }
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

    /// Every statement [`Self::list`] and [`Self::count`] may run for this page and filter,
    /// for the query-plan tests.
    pub fn page_statements(
        &self,
        filter: &ContactFilter,
        spec: &PageSpec,
        now: DateTime<Utc>,
    ) -> Vec<Statement> {
        let backend = self.db.backend();
        let limit = spec.limit + 1;
        let pages = page_selects(backend, filter, spec, now)
            .into_iter()
            .map(|select| select.limit(limit).build(backend));
        let probes = behind_probes(backend, filter, spec, now)
            .into_iter()
            .map(|probe| probe.build(backend));
        // Counts read the matches (the probe is chosen for list pages only).
        let counted = filter.with_metadata_probe(MetadataProbe::default());
        let count = counts::count_statement(backend, &counted, now);
        pages.chain(probes).chain([count]).collect()
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

/// `rows` grouped by contact, in their order.
fn by_contact<T>(rows: Vec<T>, contact: impl Fn(&T) -> Uuid) -> HashMap<Uuid, Vec<T>> {
    let mut grouped: HashMap<Uuid, Vec<T>> = HashMap::new();
    for row in rows {
        grouped.entry(contact(&row)).or_default().push(row);
    }
    grouped
}
