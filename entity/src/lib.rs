//! SeaORM entities: the shape of the stored tables, with no GraphQL or HTTP concerns.

pub mod contact;
pub mod contact_change;
pub mod contact_change_horizon;
pub mod contact_counter;
pub mod marketing_preference;
pub mod previous_whatsapp_user_id;
pub mod webhook_delivery;
pub mod webhook_position;
pub mod whatsapp_window;
