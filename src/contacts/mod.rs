//! The contacts domain: validation, the window rule, the clock, and every database query.

pub mod block;
pub mod bsuid;
pub mod bulk;
pub mod change_cursor;
pub mod changelog;
pub mod clock;
pub mod cursor;
mod fanout;
pub mod filter;
mod follow;
pub mod identity;
pub mod import;
pub mod inbound;
pub mod input;
mod merge;
mod message;
pub mod messaging_state;
pub mod metadata;
mod number_change;
pub mod order;
pub mod page;
pub mod phone;
pub mod policy;
mod policy_sql;
pub mod preferences;
mod reads;
mod service;
mod sql;
mod user_id_change;
pub mod watch;
pub mod webhook;
pub mod window;
pub mod windows;
mod writes;

pub use reads::ContactStats;
pub use service::ContactService;
