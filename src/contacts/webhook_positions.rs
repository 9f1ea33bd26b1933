//! Outgoing webhooks' delivery positions and leases (`webhook_positions`): the only SQL the
//! delivery workers run besides reading the change log.
//!
//! Why a lease rather than a PostgreSQL advisory lock: it works the same on SQLite (several
//! instances on one file) and needs no connection held for the life of the worker. Every
//! statement is one atomic `UPDATE` whose `WHERE` carries the rule:
//! - taking or renewing: only when the lease is free, expired, or already ours;
//! - advancing: only while we are still the holder and only forwards, so a worker that lost
//!   its lease (paused, partitioned) can never move the position, backwards or forwards.

use entity::webhook_position::{ActiveModel, Column, Entity};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, sea_query::OnConflict,
};

use super::{changelog, service::ContactService};
use crate::error::AppResult;

/// An endpoint's row: its key and who asks.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    /// Hex SHA-256 of the endpoint URL.
    pub endpoint: &'a str,
    /// This worker's id.
    pub holder: &'a str,
}

impl ContactService {
    /// Adds `endpoint`'s row unless it exists, positioned before the oldest change kept: a
    /// new endpoint receives the whole retained log.
    pub async fn register_webhook_endpoint(&self, endpoint: &str, origin: &str) -> AppResult<()> {
        let horizon = changelog::pruned_through(&self.db.write).await?;
        let row = ActiveModel {
            endpoint: Set(endpoint.to_owned()),
            origin: Set(origin.to_owned()),
            position: Set(horizon),
            holder: Set(None),
            lease_until_ms: Set(0),
        };
        Entity::insert(row)
            .on_conflict(OnConflict::column(Column::Endpoint).do_nothing().to_owned())
            .exec_without_returning(&self.db.write)
            .await?;
        Ok(())
    }

    /// Takes or renews the lease until `ttl_ms` from now; `Some(position)` (the endpoint's
    /// acknowledged position) when this worker holds it, `None` when another does.
    pub async fn take_webhook_lease(
        &self,
        lease: Lease<'_>,
        ttl_ms: i64,
    ) -> AppResult<Option<i64>> {
        let now = self.now().timestamp_millis();
        let free = Condition::any()
            .add(Column::Holder.is_null())
            .add(Column::LeaseUntilMs.lt(now))
            .add(Column::Holder.eq(lease.holder));
        let taken = Entity::update_many()
            .col_expr(Column::Holder, lease.holder.into())
            .col_expr(Column::LeaseUntilMs, (now + ttl_ms).into())
            .filter(Column::Endpoint.eq(lease.endpoint))
            .filter(free)
            .exec(&self.db.write)
            .await?;
        if taken.rows_affected == 0 {
            return Ok(None);
        }
        // Read on the write connection: the position is what the update just saw.
        let row = Entity::find_by_id(lease.endpoint)
            .one(&self.db.write)
            .await?;
        Ok(row.map(|row| row.position))
    }

    /// Moves the acknowledged position to `to`; false when this worker no longer holds the
    /// lease (nothing moved) or the position is already there.
    pub async fn advance_webhook_position(&self, lease: Lease<'_>, to: i64) -> AppResult<bool> {
        let moved = Entity::update_many()
            .col_expr(Column::Position, to.into())
            .filter(Column::Endpoint.eq(lease.endpoint))
            .filter(Column::Holder.eq(lease.holder))
            .filter(Column::Position.lt(to))
            .exec(&self.db.write)
            .await?;
        Ok(moved.rows_affected == 1)
    }

    /// Gives the lease up (on shutdown), so another instance takes over at once.
    pub async fn release_webhook_lease(&self, lease: Lease<'_>) -> AppResult<()> {
        Entity::update_many()
            .col_expr(Column::Holder, Option::<String>::None.into())
            .col_expr(Column::LeaseUntilMs, 0i64.into())
            .filter(Column::Endpoint.eq(lease.endpoint))
            .filter(Column::Holder.eq(lease.holder))
            .exec(&self.db.write)
            .await?;
        Ok(())
    }

    /// Cursors before this position are expired: changes after them may have been pruned.
    pub async fn change_horizon(&self) -> AppResult<i64> {
        changelog::pruned_through(&self.db.read).await
    }
}
