//! The business's block of a user (Meta's block API): nothing may be sent to a blocked user.
//! Meta lets a business block only users who wrote within the last 24 hours.

use entity::contact::{ActiveModel, Model};
use sea_orm::{ActiveModelTrait, ActiveValue::Set};
use uuid::Uuid;

use super::{
    service::{ContactService, change},
    window,
    writes::locked,
};
use crate::{
    error::{AppError, AppResult},
    events::ChangeKind,
};

impl ContactService {
    /// Blocks or unblocks the contact. Blocking needs an open window (on any number), as
    /// Meta's does: `FAILED_PRECONDITION` otherwise. Setting the state it already has changes
    /// nothing and succeeds, so a retried call is harmless.
    pub async fn set_blocked(&self, id: Uuid, blocked: bool) -> AppResult<Model> {
        let now = self.now();
        let txn = self.begin_write().await?;
        let current = locked(&txn, id).await?;
        if current.blocked == blocked {
            return Ok(current);
        }
        if blocked && !window::is_open(current.last_whatsapp_message_at, now) {
            return Err(AppError::FailedPrecondition(
                "a user can be blocked only within 24 hours of their last message or call \
                 (no WhatsApp window is open)"
                    .into(),
            ));
        }
        let mut row: ActiveModel = current.into();
        row.blocked = Set(blocked);
        row.updated_at = Set(now);
        let row = row.update(&txn).await?;
        self.commit_announcing(txn, &[change(ChangeKind::Updated, id, now)])
            .await?;
        Ok(row)
    }
}
