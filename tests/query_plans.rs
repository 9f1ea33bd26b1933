//! Query plans: every statement a list page (each order, both directions, the first page and
//! after or before any cursor, valued or null) and its count run is served by an index on
//! both backends, never a full scan or a sort of the table. The tables are filled and
//! analysed, so the planner's choice is the one it would make in production.

mod common;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use common::{T0, at, on_postgres};
use contacts_server::{
    contacts::{
        ContactService,
        clock::ManualClock,
        cursor::Cursor,
        filter::{ContactFilter, FilterInput},
        order::{ContactOrder, Direction, OrderField, SortValue},
        page::{PageArgs, PageSpec},
    },
    db::{Db, DbOptions},
    events,
};
use sea_orm::{ConnectionTrait, Statement};
use uuid::Uuid;

const ROWS: u32 = 20_000;

/// 20,000 contacts: 60% never messaged, a tenth without a phone number (BSUID only),
/// every time distinct.
fn fill(postgres: bool) -> String {
    if postgres {
        format!(
            "INSERT INTO contacts (id, phone_number, country_code, last_whatsapp_message_at, \
             metadata, created_at, updated_at, whatsapp_user_id) \
             SELECT gen_random_uuid(), \
             CASE WHEN x % 10 = 0 THEN NULL ELSE '+1555' || lpad(x::text, 7, '0') END, 'US', \
             CASE WHEN x % 5 < 3 THEN NULL ELSE timestamptz '2026-01-01' + x * interval '1 minute' END, \
             '{{}}'::jsonb, timestamptz '2025-01-01' + x * interval '1 second', \
             timestamptz '2025-06-01' + x * interval '1 second', \
             CASE WHEN x % 10 = 0 THEN 'US.' || x END \
             FROM generate_series(1, {ROWS}) AS x"
        )
    } else {
        format!(
            "INSERT INTO contacts (id, phone_number, country_code, last_whatsapp_message_at, \
             metadata, created_at, updated_at, whatsapp_user_id) \
             WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r WHERE x < {ROWS}) \
             SELECT randomblob(16), \
             CASE WHEN x % 10 = 0 THEN NULL ELSE printf('+1555%07d', x) END, 'US', \
             CASE WHEN x % 5 < 3 THEN NULL ELSE printf('2026-01-01 00:00:%09d+00:00', x) END, \
             '{{}}', printf('2025-01-01 00:00:%09d+00:00', x), \
             printf('2025-06-01 00:00:%09d+00:00', x), \
             CASE WHEN x % 10 = 0 THEN 'US.' || x END FROM r"
        )
    }
}

async fn filled_service() -> (
    ContactService,
    sea_orm::DatabaseConnection,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::fresh_database_url(&dir).await;
    let options = DbOptions {
        url: url.clone(),
        max_connections: 2,
        acquire_timeout: Duration::from_secs(10),
        busy_timeout: Duration::from_secs(5),
        statement_timeout: Duration::ZERO,
        ping_after_idle: contacts_server::db::PING_AFTER_IDLE,
    };
    let db = Db::connect(&options).await.expect("database");
    db.migrate().await.expect("migrations");
    let raw = db.write.clone();
    raw.execute_unprepared(&fill(on_postgres()))
        .await
        .expect("fill");
    raw.execute_unprepared("ANALYZE").await.expect("analyze");
    let events = events::start(&db, &url).await.expect("event bus");
    let service = ContactService::new(db, Arc::new(ManualClock::new(at(T0))), events);
    (service, raw, dir)
}

/// The plan lines that read the whole table or sort it, if any.
async fn bad_plan_lines(db: &sea_orm::DatabaseConnection, statement: &Statement) -> Vec<String> {
    let postgres = on_postgres();
    let lines = plan_lines(db, statement).await;
    let bad = |line: &String| {
        if postgres {
            line.contains("Seq Scan on contacts")
                || line.trim_start().starts_with("->  Sort")
                || line.trim_start().starts_with("Sort")
                || line.contains("Sort ")
        } else {
            (line.starts_with("SCAN contacts") && !line.contains("INDEX"))
                || line.contains("USE TEMP B-TREE")
        }
    };
    if lines.iter().any(bad) {
        lines
    } else {
        Vec::new()
    }
}

/// A cursor's id is a real row's: the middle one, so an id bound halves the rows.
async fn middle_id(db: &sea_orm::DatabaseConnection) -> Uuid {
    let sql = format!(
        "SELECT id FROM contacts ORDER BY id LIMIT 1 OFFSET {}",
        ROWS / 2
    );
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("middle id")
        .expect("a row");
    row.try_get::<Uuid>("", "id").expect("id")
}

fn spec(order: ContactOrder, args: PageArgs) -> PageSpec {
    PageSpec::parse(args, order).expect("page spec")
}

/// The page requests of one order: first and last pages, and pages on either side of a
/// valued and (nullable orders) a null cursor.
fn requests(order: ContactOrder, now: DateTime<Utc>, id: Uuid) -> Vec<(String, PageSpec)> {
    let value = match order.field {
        OrderField::PhoneNumber => SortValue::Text("+15550010000".into()),
        _ => SortValue::Time(now - chrono::Duration::days(300)),
    };
    let mut cursors = vec![value];
    if matches!(
        order.field,
        OrderField::PhoneNumber | OrderField::LastWhatsappMessageAt
    ) {
        cursors.push(SortValue::Null);
    }
    let mut out = vec![
        ("first".to_owned(), spec(order, first(50, None))),
        ("last".to_owned(), spec(order, last(50, None))),
    ];
    for value in cursors {
        let cursor = Cursor {
            field: order.field,
            value: value.clone(),
            id,
        }
        .encode();
        out.push((
            format!("after {value:?}"),
            spec(order, first(50, Some(cursor.clone()))),
        ));
        out.push((
            format!("before {value:?}"),
            spec(order, last(50, Some(cursor))),
        ));
    }
    out
}

fn first(n: i32, after: Option<String>) -> PageArgs {
    PageArgs {
        first: Some(n),
        after,
        ..Default::default()
    }
}

fn last(n: i32, before: Option<String>) -> PageArgs {
    PageArgs {
        last: Some(n),
        before,
        ..Default::default()
    }
}

/// No filter for every order; the window filters (an index of their own) with the order
/// whose index they share, the case the walk must not turn into a scan.
fn filters(field: OrderField) -> Vec<(&'static str, ContactFilter)> {
    let window = |open| FilterInput {
        whatsapp_window_open: Some(open),
        ..Default::default()
    };
    [
        ("no filter", FilterInput::default()),
        ("window open", window(true)),
        ("window closed", window(false)),
    ]
    .into_iter()
    .filter(|(name, _)| *name == "no filter" || field == OrderField::LastWhatsappMessageAt)
    .map(|(name, input)| (name, ContactFilter::parse(input, "filter").expect("filter")))
    .collect()
}

#[tokio::test]
async fn every_order_and_cursor_walks_an_index_without_sorting() {
    let (service, raw, _dir) = filled_service().await;
    let now = at(T0);
    let middle = middle_id(&raw).await;
    let mut failures = Vec::new();
    for field in OrderField::ALL {
        for direction in [Direction::Asc, Direction::Desc] {
            let order = ContactOrder { field, direction };
            for (filter_name, filter) in filters(field) {
                for (page, spec) in requests(order, now, middle) {
                    // The last statement is the count, tested below.
                    let mut statements = service.page_statements(&filter, &spec, now);
                    statements.pop();
                    for statement in statements {
                        let bad = bad_plan_lines(&raw, &statement).await;
                        if !bad.is_empty() {
                            failures.push(format!(
                                "{} {direction:?}, {filter_name}, {page}:\n  {}\n  {}",
                                field.name(),
                                statement.sql,
                                bad.join("\n  ")
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The filters whose counts are asserted: none (the maintained total), the window filters
/// on any number and on one (the open windows' index range; closed is the total minus it),
/// and every filter with an index of its own, each with a value that matches a small part of
/// the table (for a range of half the table PostgreSQL rightly prefers reading it whole, and
/// that is a count of half the rows either way). Metadata: the GIN index on PostgreSQL, the
/// side table of pairs on SQLite.
fn count_filters() -> Vec<(&'static str, FilterInput)> {
    let number = || Some("1001".to_owned());
    let mut filters = vec![
        ("no filter", FilterInput::default()),
        (
            "window open",
            FilterInput {
                whatsapp_window_open: Some(true),
                ..Default::default()
            },
        ),
        (
            "window closed",
            FilterInput {
                whatsapp_window_open: Some(false),
                ..Default::default()
            },
        ),
        (
            "only a number",
            FilterInput {
                business_phone_number_id: number(),
                ..Default::default()
            },
        ),
        (
            "open on a number",
            FilterInput {
                business_phone_number_id: number(),
                whatsapp_window_open: Some(true),
                ..Default::default()
            },
        ),
        (
            "closed on a number",
            FilterInput {
                business_phone_number_id: number(),
                whatsapp_window_open: Some(false),
                ..Default::default()
            },
        ),
        (
            "country",
            FilterInput {
                country_code: Some(vec!["CL".into()]),
                ..Default::default()
            },
        ),
        (
            "prefix",
            FilterInput {
                phone_number_prefix: Some("+155500123".into()),
                ..Default::default()
            },
        ),
        (
            "without phone",
            FilterInput {
                has_phone_number: Some(false),
                ..Default::default()
            },
        ),
        (
            "user id",
            FilterInput {
                whatsapp_user_id: Some("US.10".into()),
                ..Default::default()
            },
        ),
        (
            "created after",
            FilterInput {
                created_after: Some(at("2025-01-01T05:00:00Z")),
                ..Default::default()
            },
        ),
        (
            "messaged before",
            FilterInput {
                last_whatsapp_message_before: Some(at("2026-01-02T00:00:00Z")),
                ..Default::default()
            },
        ),
        (
            "country and window open",
            FilterInput {
                country_code: Some(vec!["CL".into()]),
                whatsapp_window_open: Some(true),
                ..Default::default()
            },
        ),
    ];
    let mut metadata = serde_json::Map::new();
    metadata.insert("tier".into(), serde_json::json!("gold"));
    filters.push((
        "metadata",
        FilterInput {
            metadata: Some(metadata),
            ..Default::default()
        },
    ));
    filters
}

/// Every count (`totalCount` and `contactStats`) of [`count_filters`] is served by the
/// counter or an index on both backends: no full scan of the table. Prints each plan, the
/// evidence quoted in reviews (`--nocapture`).
#[tokio::test]
async fn counts_read_an_index_not_the_table() {
    let (service, raw, _dir) = filled_service().await;
    for statement in fill_messaging(on_postgres()) {
        raw.execute_unprepared(&statement).await.expect("fill");
    }
    raw.execute_unprepared("ANALYZE").await.expect("analyze");
    let now = at(T0);
    let mut failures = Vec::new();
    for (name, input) in count_filters() {
        let filter = ContactFilter::parse(input, "filter").expect("filter");
        for (kind, statement) in ["count", "stats"]
            .into_iter()
            .zip(service.count_statements(&filter, now))
        {
            let plan = plan_lines(&raw, &statement).await;
            println!("{name} ({kind}): {}", plan.join(" | "));
            let bad = bad_plan_lines(&raw, &statement).await;
            if !bad.is_empty() {
                failures.push(format!(
                    "{name} ({kind}):\n  {}\n  {}",
                    statement.sql,
                    bad.join("\n  ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The unfiltered count is the maintained total, exact after the raw inserts of the fill (the
/// triggers count every write, whoever makes it) and a delete.
#[tokio::test]
async fn the_maintained_total_matches_the_table() {
    let (service, raw, _dir) = filled_service().await;
    let now = at(T0);
    let all = ContactFilter::default();
    assert_eq!(
        service.count(&all, now).await.expect("count"),
        u64::from(ROWS)
    );
    raw.execute_unprepared("DELETE FROM contacts WHERE phone_number LIKE '+155500000%'")
        .await
        .expect("delete");
    let stats = service.stats(&all, now).await.expect("stats");
    assert_eq!(stats.total, i64::from(ROWS) - 90);
    let closed = FilterInput {
        whatsapp_window_open: Some(false),
        ..Default::default()
    };
    let closed = ContactFilter::parse(closed, "filter").expect("filter");
    let open = FilterInput {
        whatsapp_window_open: Some(true),
        ..Default::default()
    };
    let open = ContactFilter::parse(open, "filter").expect("filter");
    let (closed, open) = (
        service.count(&closed, now).await.expect("closed"),
        service.count(&open, now).await.expect("open"),
    );
    assert_eq!(closed + open, u64::from(ROWS) - 90);
    assert_eq!(open as i64, stats.whatsapp_window_open);
    // Emptied whole: PostgreSQL's TRUNCATE fires no delete trigger (its own trigger resets
    // the counter); SQLite's DELETE without WHERE skips its truncate shortcut for a table
    // with delete triggers.
    let empty = if on_postgres() {
        "TRUNCATE contacts CASCADE"
    } else {
        "DELETE FROM contacts"
    };
    raw.execute_unprepared(empty).await.expect("empty");
    assert_eq!(service.count(&all, now).await.expect("count"), 0);
}

/// Windows on two business numbers for every contact that messaged, and marketing choices
/// (an opt-out for all numbers, a resume on one) for one contact in a hundred.
fn fill_messaging(postgres: bool) -> [String; 3] {
    let number = if postgres {
        "CASE WHEN random() < 0.5 THEN '1001' ELSE '1002' END"
    } else {
        "CASE WHEN abs(random()) % 2 = 0 THEN '1001' ELSE '1002' END"
    };
    let every_hundredth = if postgres {
        "get_byte(uuid_send(id), 15) % 100 = 0"
    } else {
        "unicode(substr(id, 16, 1)) % 100 = 0"
    };
    [
        format!(
            "INSERT INTO contact_whatsapp_windows (contact_id, business_phone_number_id, \
             last_inbound_at) SELECT id, {number}, last_whatsapp_message_at FROM contacts \
             WHERE last_whatsapp_message_at IS NOT NULL"
        ),
        format!(
            "INSERT INTO contact_marketing_preferences (contact_id, business_phone_number_id, \
             opted_out, recorded_at) SELECT id, '', true, created_at FROM contacts \
             WHERE {every_hundredth}"
        ),
        "UPDATE contacts SET blocked = true WHERE id IN \
         (SELECT contact_id FROM contact_marketing_preferences)"
            .into(),
    ]
}

/// The messaging filters (on one business number and on any): the contacts are walked along
/// an index, nothing sorted or scanned whole; each window is probed by key. The window
/// filters are asserted with the last-message order, whose index they share (in another
/// order the few open windows are found on that index and sorted, as for the plain window
/// filter above); the marketing filters with both. The opted-out side reads the opt-outs,
/// which are few, as a set.
#[tokio::test]
async fn messaging_filters_walk_indexes_and_probe_by_key() {
    let (service, raw, _dir) = filled_service().await;
    for statement in fill_messaging(on_postgres()) {
        raw.execute_unprepared(&statement).await.expect("fill");
    }
    raw.execute_unprepared("ANALYZE").await.expect("analyze");
    let now = at(T0);
    let on = |number: Option<&str>| number.map(str::to_owned);
    let filters = [
        (
            "open on a number",
            FilterInput {
                business_phone_number_id: on(Some("1001")),
                whatsapp_window_open: Some(true),
                ..Default::default()
            },
        ),
        (
            "closed on a number",
            FilterInput {
                business_phone_number_id: on(Some("1001")),
                whatsapp_window_open: Some(false),
                ..Default::default()
            },
        ),
        (
            "free-form on a number",
            FilterInput {
                business_phone_number_id: on(Some("1001")),
                messaging_free_form: Some(true),
                ..Default::default()
            },
        ),
        (
            "marketing allowed",
            FilterInput {
                marketing_allowed: Some(true),
                ..Default::default()
            },
        ),
        (
            "marketing refused on a number",
            FilterInput {
                business_phone_number_id: on(Some("1002")),
                marketing_allowed: Some(false),
                ..Default::default()
            },
        ),
    ];
    let orders = [
        ContactOrder::default(),
        ContactOrder {
            field: OrderField::LastWhatsappMessageAt,
            direction: Direction::Desc,
        },
    ];
    let windows_read_whole = |line: &str| {
        if on_postgres() {
            line.contains("Seq Scan on contact_whatsapp_windows")
        } else {
            ["SCAN w", "SCAN q"]
                .iter()
                .any(|scan| line.starts_with(scan) && !line.contains("INDEX"))
        }
    };
    let mut failures = Vec::new();
    for (name, input) in filters {
        let filter = ContactFilter::parse(input, "filter").expect("filter");
        for order in orders {
            if name.contains("on a number")
                && !name.starts_with("marketing")
                && order.field != OrderField::LastWhatsappMessageAt
            {
                continue;
            }
            let page = spec(order, first(50, None));
            let mut statements = service.page_statements(&filter, &page, now);
            // The count of open windows on a number reads them from the number's index; the
            // other counts are left to `counts_read_an_index_not_the_table`.
            if name != "open on a number" {
                statements.pop();
            }
            for statement in statements {
                let plan = plan_lines(&raw, &statement).await;
                let mut bad = if on_postgres() {
                    contacts_scanned_or_sorted(&plan)
                } else {
                    bad_plan_lines(&raw, &statement).await
                };
                bad.extend(plan.into_iter().filter(|l| windows_read_whole(l)));
                if !bad.is_empty() {
                    failures.push(format!(
                        "{name}, {:?}:\n  {}\n  {}",
                        order.field.name(),
                        statement.sql,
                        bad.join("\n  ")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// PostgreSQL plan lines that scan `contacts` whole or sort its rows. Sorting the few
/// opt-outs (`p`, `q`) for a merge join is not sorting the table.
fn contacts_scanned_or_sorted(plan: &[String]) -> Vec<String> {
    let mut bad = Vec::new();
    for (index, line) in plan.iter().enumerate() {
        let sorts_side_table = plan.get(index + 1).is_some_and(|next| {
            let next = next.trim_start();
            next.starts_with("Sort Key: p.") || next.starts_with("Sort Key: q.")
        });
        let node = line.trim_start().trim_start_matches("->  ");
        let sort = node.starts_with("Sort ") && !node.starts_with("Sort Key");
        if line.contains("Seq Scan on contacts") || (sort && !sorts_side_table) {
            bad.push(line.clone());
        }
    }
    bad
}

/// Every line of a statement's plan.
async fn plan_lines(db: &sea_orm::DatabaseConnection, statement: &Statement) -> Vec<String> {
    let postgres = on_postgres();
    let prefix = if postgres {
        "EXPLAIN "
    } else {
        "EXPLAIN QUERY PLAN "
    };
    let explain = Statement {
        sql: format!("{prefix}{}", statement.sql),
        ..statement.clone()
    };
    let column = if postgres { "QUERY PLAN" } else { "detail" };
    db.query_all_raw(explain)
        .await
        .expect("explain")
        .iter()
        .map(|row| row.try_get::<String>("", column).expect("plan line"))
        .collect()
}

/// Metadata filters are served by an index on both backends: PostgreSQL's GIN index, SQLite's
/// entries (key, value) index that triggers keep. Every order and page, the count included,
/// for a value no contact has, one 1 in 2,000 has, and one three quarters of them have; matched rows
/// may be sorted (their number is the result's), the table is never read whole.
#[tokio::test]
async fn metadata_filters_probe_an_index() {
    let (service, raw, _dir) = filled_service().await;
    let tag = if on_postgres() {
        "UPDATE contacts SET metadata = jsonb_build_object('tier', \
         CASE WHEN hashtext(id::text) % 2000 = 0 THEN 'rare' \
         WHEN hashtext(id::text) % 4 = 0 THEN 'other' ELSE 'common' END)"
    } else {
        "UPDATE contacts SET metadata = json_object('tier', \
         CASE WHEN rowid % 2000 = 0 THEN 'rare' WHEN rowid % 4 = 0 THEN 'other' ELSE 'common' END)"
    };
    raw.execute_unprepared(tag).await.expect("tag");
    raw.execute_unprepared("ANALYZE").await.expect("analyze");
    let now = at(T0);
    let middle = middle_id(&raw).await;
    let mut failures = Vec::new();
    for tier in ["absent", "rare", "common"] {
        let input = FilterInput {
            metadata: Some(
                serde_json::from_value(serde_json::json!({ "tier": tier })).expect("map"),
            ),
            ..Default::default()
        };
        let filter = ContactFilter::parse(input, "filter").expect("filter");
        let filter = service
            .with_metadata_probe_for_list(&filter)
            .await
            .expect("probe");
        for field in OrderField::ALL {
            for direction in [Direction::Asc, Direction::Desc] {
                let order = ContactOrder { field, direction };
                for (page, spec) in requests(order, now, middle) {
                    let statements = service.page_statements(&filter, &spec, now);
                    let count_index = statements.len() - 1;
                    for (index, statement) in statements.iter().enumerate() {
                        let lines = plan_lines(&raw, statement).await;
                        let is_count = index == count_index;
                        if let Some(why) = metadata_plan_fault(tier, is_count, &lines) {
                            failures.push(format!(
                                "{tier}, {} {direction:?}, {page}: {why}\n  {}\n  {}",
                                field.name(),
                                statement.sql,
                                lines.join("\n  ")
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What is wrong with a metadata filter's plan, if anything. Never a scan of the table, except
/// to count a value most contacts have (that count grows with its result; PostgreSQL then
/// rightly prefers the sequential read); on SQLite, a rare value starts from its entries (no
/// walk of contacts at all), and a page of a common one walks the order's index without
/// sorting the matches.
fn metadata_plan_fault(tier: &str, is_count: bool, lines: &[String]) -> Option<&'static str> {
    if tier == "common" && is_count {
        return None;
    }
    let has = |needle: &str| lines.iter().any(|line| line.contains(needle));
    if has("Seq Scan on contacts") || has("json_each") {
        return Some("reads the table");
    }
    if on_postgres() {
        return None;
    }
    let scans_contacts = lines.iter().any(|line| line.starts_with("SCAN contacts"));
    match tier {
        "common" if !is_count && has("USE TEMP B-TREE") => Some("sorts the matches"),
        "common" => None,
        _ if scans_contacts => Some("walks the contacts for a rare value"),
        _ => None,
    }
}

/// SQLite reads a phone prefix as a range of the phone index and sorts its matches for every
/// page; when many contacts share the prefix the page walks its order instead and tests each
/// row (`prefix_probe.rs`). Here "+1555" is 18,000 of the 20,000 contacts: the page chosen
/// for it neither scans nor sorts, and reads the same rows as the range, sorted.
#[tokio::test]
async fn a_common_prefix_walks_the_order_instead_of_sorting_its_matches() {
    let (service, raw, _dir) = filled_service().await;
    let now = at(T0);
    let input = FilterInput {
        phone_number_prefix: Some("+1555".into()),
        ..Default::default()
    };
    let common = ContactFilter::parse(input, "filter").expect("filter");
    let order = ContactOrder::default();
    let chosen = service
        .with_prefix_probe_for_list(common, order.field)
        .await
        .expect("probe");
    let page_spec = spec(order, first(50, None));
    let mut statements = service.page_statements(&chosen, &page_spec, now);
    statements.pop();
    assert_eq!(
        statements[0].sql.contains("+phone_number"),
        !on_postgres(),
        "{}",
        statements[0].sql
    );
    for statement in &statements {
        let bad = bad_plan_lines(&raw, statement).await;
        assert!(bad.is_empty(), "{}\n  {}", statement.sql, bad.join("\n  "));
    }
    let ids = |rows: Vec<sea_orm::QueryResult>| -> Vec<Uuid> {
        rows.iter()
            .map(|row| row.try_get::<Uuid>("", "id").expect("id"))
            .collect()
    };
    let page = raw
        .query_all_raw(statements[0].clone())
        .await
        .expect("page");
    let expected = raw
        .query_all_raw(Statement::from_string(
            raw.get_database_backend(),
            "SELECT id FROM contacts WHERE phone_number >= '+1555' AND phone_number < '+1556' \
             ORDER BY created_at, id LIMIT 51",
        ))
        .await
        .expect("expected page");
    assert_eq!(ids(page), ids(expected));
}

/// SQLite seeks a page after (or before) a cursor by the row value `(column, id)` on the
/// order's `(column, id)` index, not by the column alone: with a column bound it started at
/// the first row tying with the cursor's value and stepped over every tie (4 ms for 13,377
/// ties in the 10M benchmark). The phone order keeps its column bound (its unique index has no
/// id). PostgreSQL seeks by the row value whatever else the query says.
#[tokio::test]
async fn a_cursor_is_sought_by_its_row_value_on_sqlite() {
    if on_postgres() {
        return;
    }
    let (service, raw, _dir) = filled_service().await;
    let now = at(T0);
    let middle = middle_id(&raw).await;
    let mut failures = Vec::new();
    for field in [
        OrderField::CreatedAt,
        OrderField::UpdatedAt,
        OrderField::LastWhatsappMessageAt,
    ] {
        for direction in [Direction::Asc, Direction::Desc] {
            let order = ContactOrder { field, direction };
            for (page, spec) in requests(order, now, middle)
                .into_iter()
                .filter(|(page, _)| page.contains("Time"))
            {
                let filter = ContactFilter::default();
                let statement = service.page_statements(&filter, &spec, now).remove(0);
                let plan = plan_lines(&raw, &statement).await.join(" | ");
                if !plan.contains(",id)<(?,?)") && !plan.contains(",id)>(?,?)") {
                    failures.push(format!("{} {direction:?} {page}: {plan}", field.name()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
