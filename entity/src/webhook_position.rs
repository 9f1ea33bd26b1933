//! The `webhook_positions` table: each outgoing webhook endpoint's delivered position in the
//! change log and the lease that lets one instance at a time deliver to it.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_positions")]
pub struct Model {
    /// Hex SHA-256 of the endpoint's URL.
    #[sea_orm(primary_key, auto_increment = false)]
    pub endpoint: String,
    /// `scheme://host:port` of the URL, for operators (the path may hold a token).
    pub origin: String,
    /// The newest change-log position the endpoint acknowledged (0: none yet).
    pub position: i64,
    /// The worker (instance) allowed to deliver until `lease_until_ms`.
    pub holder: Option<String>,
    /// Unix milliseconds, by the service clock, when the holder's lease ends.
    pub lease_until_ms: i64,
}

impl ActiveModelBehavior for ActiveModel {}
