//! SeaORM entities: the shape of the stored tables, with no GraphQL or HTTP concerns.

pub mod contact;
