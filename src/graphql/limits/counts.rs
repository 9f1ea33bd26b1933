//! What the counts of a document cost. A count is one statement however many rows it reads,
//! so counting it as one field would let a document of aliased counts read the table many
//! times over for the price of a few fields. Each count is charged by what it may read: the
//! maintained total (a sum of at most 32 counter rows) costs 1; a count of an index range
//! (open windows, or any filter), which may read as many entries as the table has rows,
//! costs [`RANGE_COUNT`]. The charge is added to async-graphql's complexity and held to the
//! same limit, `MAX_COMPLEXITY`.

use async_graphql::{Value, parser::types::Field};

/// A count of an index range: with the default limit of 5,000, twelve unfiltered
/// `contactStats` (one range each: the open windows) or six filtered ones (two each) fit in a
/// document, fifteen aliased ones do not.
pub const RANGE_COUNT: u64 = 400;
/// The unfiltered total, read from the maintained counter.
pub const MAINTAINED_TOTAL: u64 = 1;

/// True when `field` is given a `filter` that may filter: any value but a literal null
/// (a variable may hold one, so it is charged as one).
fn filtered(field: &Field) -> bool {
    field.get_argument("filter").is_some_and(|value| {
        let literal = value.node.clone().into_const();
        literal.is_none_or(|literal| literal != Value::Null)
    })
}

/// What `field` adds to the count charge itself, and the `totalCount`s below it still to
/// charge: `pending` of them are below it (each charged by the `contacts` connection it is
/// under, whose filter decides what it reads).
pub(super) fn charge(field: &Field, pending: u64) -> (u64, u64) {
    match field.name.node.as_str() {
        "contactStats" => {
            let total = if filtered(field) {
                RANGE_COUNT
            } else {
                MAINTAINED_TOTAL
            };
            (total.saturating_add(RANGE_COUNT), pending)
        }
        "totalCount" => (0, pending.saturating_add(1)),
        "contacts" => {
            let each = if filtered(field) {
                RANGE_COUNT
            } else {
                MAINTAINED_TOTAL
            };
            (each.saturating_mul(pending), 0)
        }
        _ => (0, pending),
    }
}

/// The charge of `totalCount`s no connection claimed (in a fragment spread where its
/// connection is not known): the most a count may cost.
pub(super) fn unclaimed(pending: u64) -> u64 {
    RANGE_COUNT.saturating_mul(pending)
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::{super::count_charge, *};

    fn charge_of(query: &str) -> u64 {
        count_charge(&parse_query(query).unwrap(), None).unwrap()
    }

    #[test]
    fn each_count_is_charged_by_what_it_may_read() {
        assert_eq!(charge_of("{ contactStats { total } }"), 1 + RANGE_COUNT);
        assert_eq!(
            charge_of("{ contactStats(filter: null) { total } }"),
            1 + RANGE_COUNT
        );
        let filtered = "{ contactStats(filter: { countryCode: [\"CL\"] }) { total } }";
        assert_eq!(charge_of(filtered), 2 * RANGE_COUNT);
        // A variable may hold a filter.
        let variable = "query($f: ContactFilter) { contactStats(filter: $f) { total } }";
        assert_eq!(charge_of(variable), 2 * RANGE_COUNT);
        let aliased = "{ a: contactStats { total } b: contactStats { whatsappWindowOpen } }";
        assert_eq!(charge_of(aliased), 2 * (1 + RANGE_COUNT));
        assert_eq!(charge_of("{ contacts(first: 100) { totalCount } }"), 1);
        assert_eq!(charge_of("{ contacts(first: 100) { nodes { id } } }"), 0);
        let page = "{ contacts(first: 100, filter: { hasPhoneNumber: true }) { totalCount } }";
        assert_eq!(charge_of(page), RANGE_COUNT);
    }

    #[test]
    fn counts_in_fragments_are_charged_where_they_are_spread() {
        let spread = "{ a: contacts(filter: { hasPhoneNumber: true }) { ...C } b: contacts { ...C } \
                      ...S ...S } \
                      fragment C on ContactConnection { totalCount n: totalCount } \
                      fragment S on Query { contactStats { total } }";
        let expected = 2 * RANGE_COUNT + 2 * MAINTAINED_TOTAL + 2 * (1 + RANGE_COUNT);
        assert_eq!(charge_of(spread), expected);
        // Only the operation run is charged.
        let two = "query A { contactStats { total } } query B { contacts { totalCount } }";
        let doc = parse_query(two).unwrap();
        assert_eq!(count_charge(&doc, Some("B")).unwrap(), 1);
        assert_eq!(count_charge(&doc, Some("A")).unwrap(), 1 + RANGE_COUNT);
    }
}
