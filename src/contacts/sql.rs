//! The few expressions whose SQL differs between SQLite and PostgreSQL; everything else is
//! built once with sea-query and runs on both.

use sea_orm::{
    DbBackend, ExprTrait, Statement,
    sea_query::{Expr, SimpleExpr},
};
use serde_json::Value;

use super::metadata::Metadata;

/// A custom expression written with `?` placeholders, numbered for PostgreSQL (`$1`, `$2`...),
/// because sea-query only substitutes the backend's own placeholder style.
pub fn custom<V, I>(backend: DbBackend, template: &str, values: I) -> SimpleExpr
where
    V: Into<sea_orm::Value>,
    I: IntoIterator<Item = V>,
{
    Expr::cust_with_values(numbered(backend, template), values)
}

/// How many rows `rows` (a `FROM … WHERE …` with `?` placeholders) holds, counting no further
/// than `bound`: what the list probes read to choose a plan, at most `bound` index entries.
pub async fn count_up_to<C: sea_orm::ConnectionTrait>(
    conn: &C,
    rows: &str,
    mut values: Vec<sea_orm::Value>,
    bound: u64,
) -> Result<u64, sea_orm::DbErr> {
    let backend = conn.get_database_backend();
    values.push(bound.into());
    let template = format!("SELECT count(*) AS n FROM (SELECT 1 {rows} LIMIT ?) AS bounded");
    let row = conn
        .query_one_raw(statement(backend, &template, values))
        .await?;
    let n = row.map(|row| row.try_get::<i64>("", "n")).transpose()?;
    Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// A whole statement written with `?` placeholders, as [`custom`] numbers them.
pub fn statement(backend: DbBackend, template: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(backend, numbered(backend, template), values)
}

/// Deletes a contact's rows of `table` beyond the first `keep` in the order `kept_first` (an
/// ORDER BY list, e.g. `last_inbound_at DESC`); rows whose `business_phone_number_id` is `''`,
/// the all-numbers or no-number row, are always kept: the bound on rows one contact may hold
/// in a side table keyed by business number.
pub async fn keep_newest<C: sea_orm::ConnectionTrait>(
    conn: &C,
    table: &'static str,
    kept_first: &'static str,
    contact_id: uuid::Uuid,
    keep: usize,
) -> Result<(), sea_orm::DbErr> {
    let backend = conn.get_database_backend();
    // SQLite needs a LIMIT to take an OFFSET; PostgreSQL takes OFFSET alone.
    let beyond = match backend {
        DbBackend::Postgres => format!("OFFSET {keep}"),
        _ => format!("LIMIT -1 OFFSET {keep}"),
    };
    let template = format!(
        "DELETE FROM {table} WHERE contact_id = ? AND business_phone_number_id IN \
         (SELECT business_phone_number_id FROM {table} WHERE contact_id = ? \
         AND business_phone_number_id <> '' \
         ORDER BY {kept_first}, business_phone_number_id {beyond})"
    );
    let values = vec![contact_id.into(), contact_id.into()];
    conn.execute_raw(statement(backend, &template, values))
        .await?;
    Ok(())
}

/// `template` with its `?` placeholders as the backend writes them.
fn numbered(backend: DbBackend, template: &str) -> String {
    if backend != DbBackend::Postgres {
        return template.to_owned();
    }
    let mut numbered = String::with_capacity(template.len() + 8);
    for (index, piece) in template.split('?').enumerate() {
        if index > 0 {
            numbered.push_str(&format!("${index}"));
        }
        numbered.push_str(piece);
    }
    numbered
}

/// `metadata` contains every pair of `wanted`. On SQLite the pairs are read from the entries
/// that triggers keep (migration 000009), in one of two ways: [`MetadataProbe`].
pub fn metadata_contains(
    backend: DbBackend,
    wanted: &Metadata,
    probe: MetadataProbe,
) -> SimpleExpr {
    let template = match (backend, probe) {
        // jsonb containment, served by the GIN index.
        (DbBackend::Postgres, _) => {
            return custom(backend, "metadata @> CAST(? AS jsonb)", [wanted.to_json()]);
        }
        (_, MetadataProbe::Matches) => {
            "contacts.id IN (SELECT e.contact_id FROM contact_metadata_entries AS e \
             WHERE e.key = ? AND e.value = ?)"
        }
        (_, MetadataProbe::EachRow) => {
            "EXISTS (SELECT 1 FROM contact_metadata_entries AS e \
             WHERE e.key = ? AND e.value = ? AND e.contact_id = contacts.id)"
        }
    };
    wanted
        .iter()
        .map(|(key, value)| custom(backend, template, [key.clone(), value.clone()]))
        .reduce(|all, one| all.and(one))
        .unwrap_or_else(|| Expr::cust("1 = 1"))
}

/// How SQLite reads a metadata filter. Its planner estimates every `IN (subquery)` at a few
/// rows, so left alone it always starts from the matches and sorts them: right for a rare
/// value, a sort of millions for a common one. The service counts the rarest pair's matches
/// (up to a bound) and picks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetadataProbe {
    /// Start from the matching entries (by the `(key, value)` index), then sort them.
    #[default]
    Matches,
    /// Walk the order's index and probe each row's entry by primary key: a common value
    /// fills a page after a few rows.
    EachRow,
}

/// The stored metadata with `set` merged in and `unset` removed, as one expression so the
/// merge happens inside a single UPDATE.
pub fn metadata_merged(backend: DbBackend, set: &Metadata, unset: &[String]) -> SimpleExpr {
    let unset = Value::Array(unset.iter().cloned().map(Value::String).collect());
    match backend {
        DbBackend::Postgres => custom(
            backend,
            "(metadata || CAST(? AS jsonb)) - ARRAY(SELECT jsonb_array_elements_text(CAST(? AS jsonb)))",
            [set.to_json(), unset],
        ),
        _ => custom(
            backend,
            "(SELECT json_group_object(m.key, m.value) FROM json_each(json_patch(contacts.metadata, ?)) AS m \
             WHERE m.key NOT IN (SELECT u.value FROM json_each(?) AS u))",
            [set.to_json().to_string(), unset.to_string()],
        ),
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{PostgresQueryBuilder, Query, SqliteQueryBuilder};

    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        let pg = Query::select()
            .expr(custom(DbBackend::Postgres, "? + ?", [1, 2]))
            .to_string(PostgresQueryBuilder);
        assert_eq!(pg, "SELECT 1 + 2");
        let lite = Query::select()
            .expr(custom(DbBackend::Sqlite, "? + ?", [1, 2]))
            .to_string(SqliteQueryBuilder);
        assert_eq!(lite, "SELECT 1 + 2");
    }
}
