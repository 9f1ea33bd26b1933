//! Sort orders and their keyset (seek) conditions: (null flag, sort column, id), nulls last in
//! both directions, ties broken by id.

use chrono::{DateTime, Utc};
use entity::contact::{Column, Model};
use sea_orm::{
    Condition, ExprTrait, Order, QueryOrder, Select,
    sea_query::{Expr, SimpleExpr},
};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderField {
    #[default]
    CreatedAt,
    UpdatedAt,
    LastWhatsappMessageAt,
    /// Byte order on both backends (on PostgreSQL the column's own collation is `"C"`), so the
    /// ORDER BY, the cursor seeks and the prefix range agree whatever the database's default.
    PhoneNumber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

impl Direction {
    pub fn reversed(self) -> Self {
        match self {
            Self::Asc => Self::Desc,
            Self::Desc => Self::Asc,
        }
    }

    fn order(self) -> Order {
        match self {
            Self::Asc => Order::Asc,
            Self::Desc => Order::Desc,
        }
    }
}

/// Default `CREATED_AT ASC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContactOrder {
    pub field: OrderField,
    pub direction: Direction,
}

/// A row's value in the sort column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    Time(DateTime<Utc>),
    Text(String),
    Null,
}

impl SortValue {
    fn to_expr(&self) -> SimpleExpr {
        match self {
            Self::Time(at) => Expr::val(*at),
            Self::Text(text) => Expr::val(text.clone()),
            Self::Null => Expr::val(Option::<String>::None),
        }
    }
}

impl OrderField {
    pub const ALL: [Self; 4] = [
        Self::CreatedAt,
        Self::UpdatedAt,
        Self::LastWhatsappMessageAt,
        Self::PhoneNumber,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::CreatedAt => "CREATED_AT",
            Self::UpdatedAt => "UPDATED_AT",
            Self::LastWhatsappMessageAt => "LAST_WHATSAPP_MESSAGE_AT",
            Self::PhoneNumber => "PHONE_NUMBER",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|field| field.name() == name)
    }

    fn column(self) -> Column {
        match self {
            Self::CreatedAt => Column::CreatedAt,
            Self::UpdatedAt => Column::UpdatedAt,
            Self::LastWhatsappMessageAt => Column::LastWhatsappMessageAt,
            Self::PhoneNumber => Column::PhoneNumber,
        }
    }

    /// Contacts known by WhatsApp user id alone have no phone number.
    fn nullable(self) -> bool {
        matches!(self, Self::LastWhatsappMessageAt | Self::PhoneNumber)
    }

    /// The row's position in this order.
    pub fn value_of(self, row: &Model) -> SortValue {
        match self {
            Self::CreatedAt => SortValue::Time(row.created_at),
            Self::UpdatedAt => SortValue::Time(row.updated_at),
            Self::LastWhatsappMessageAt => row
                .last_whatsapp_message_at
                .map_or(SortValue::Null, SortValue::Time),
            Self::PhoneNumber => row
                .phone_number
                .clone()
                .map_or(SortValue::Null, SortValue::Text),
        }
    }
}

/// Orders `select` by the key, walking `direction`. Nulls belong at the end of the logical
/// order, so a forward walk puts them last and a backward walk (the reversed order) first.
pub fn apply_order(
    select: Select<entity::contact::Entity>,
    field: OrderField,
    direction: Direction,
    backward: bool,
    nulls_possible: bool,
) -> Select<entity::contact::Entity> {
    let column = Expr::col(field.column());
    let mut select = select;
    if field.nullable() && nulls_possible {
        let nulls = if backward { Order::Desc } else { Order::Asc };
        select = select.order_by(column.clone().is_null(), nulls);
    }
    select
        .order_by(column, direction.order())
        .order_by(Expr::col(Column::Id), direction.order())
}

/// Rows strictly after (`after == true`) or strictly before the position (`value`, `id`) in the
/// order (`field`, `direction`).
pub fn seek(
    field: OrderField,
    direction: Direction,
    value: &SortValue,
    id: Uuid,
    after: bool,
) -> Condition {
    let column = || Expr::col(field.column());
    let id_col = || Expr::col(Column::Id);
    let greater = (direction == Direction::Asc) == after;
    let beyond = |lhs: Expr, rhs: SimpleExpr| if greater { lhs.gt(rhs) } else { lhs.lt(rhs) };
    let id_beyond = beyond(id_col(), Expr::val(id));
    match value {
        SortValue::Null => {
            let same_null_key = Condition::all().add(column().is_null()).add(id_beyond);
            if after {
                same_null_key
            } else {
                Condition::any()
                    .add(column().is_not_null())
                    .add(same_null_key)
            }
        }
        value => {
            let tie = Condition::all()
                .add(column().eq(value.to_expr()))
                .add(id_beyond);
            let cond = Condition::any()
                .add(beyond(column(), value.to_expr()))
                .add(tie);
            if after && field.nullable() {
                return cond.add(column().is_null());
            }
            // The same rows, with a bound the planner can seek the (field, id) index to:
            // without it SQLite reads the index from its start and filters, so page N costs N.
            let bound = if greater {
                column().gte(value.to_expr())
            } else {
                column().lte(value.to_expr())
            };
            Condition::all().add(bound).add(cond)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_round_trip() {
        for field in OrderField::ALL {
            assert_eq!(OrderField::from_name(field.name()), Some(field));
        }
        assert_eq!(OrderField::from_name("ID"), None);
    }
}
