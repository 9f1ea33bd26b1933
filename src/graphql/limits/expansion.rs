//! The size of each operation once its fragments are spread, computed without spreading them:
//! each fragment is measured once, after the fragments it spreads (in topological order), and
//! every spread adds that measure. So the check is linear in the document, however often a
//! fragment is spread, and a cycle is refused here instead of recursing.

use std::collections::{HashMap, VecDeque};

use async_graphql::{
    Positioned, ServerResult,
    parser::types::{ExecutableDocument, Field, FragmentDefinition, Selection, SelectionSet},
};

use super::{Limits, counts, too_big};

/// What a selection set amounts to with its fragments spread. Counts saturate rather than
/// overflow: a spread doubled 80 times is simply "too many".
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    /// Fields, fragment spreads and inline fragments: the nodes async-graphql's visitors and
    /// the executor walk.
    pub selections: u64,
    pub aliases: u64,
    /// Fields at the set's own level (root fields, for an operation).
    pub top_fields: u64,
    /// Levels of fields outside introspection (a field directly in the set is level 1).
    pub plain_depth: u64,
    /// Levels of fields at or below `__schema` / `__type`, which have their own allowance.
    pub introspection_depth: u64,
    /// What the counts cost (see `counts`).
    pub counts: u64,
    /// `totalCount`s not yet charged: their connection, above, decides what they read.
    pub pending_totals: u64,
}

impl Measure {
    fn add(&mut self, other: &Measure) {
        self.selections = self.selections.saturating_add(other.selections);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.top_fields = self.top_fields.saturating_add(other.top_fields);
        self.plain_depth = self.plain_depth.max(other.plain_depth);
        self.introspection_depth = self.introspection_depth.max(other.introspection_depth);
        self.counts = self.counts.saturating_add(other.counts);
        self.pending_totals = self.pending_totals.saturating_add(other.pending_totals);
    }
}

/// Measures selection sets, given the measure of every fragment they may spread.
struct Measurer<'a> {
    fragments: HashMap<&'a str, Measure>,
    /// Selections looked at, to prove the work is linear.
    visited: u64,
}

impl<'a> Measurer<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> Measure {
        let mut measure = Measure::default();
        for item in &set.items {
            self.visited += 1;
            measure.selections = measure.selections.saturating_add(1);
            match &item.node {
                Selection::Field(field) => {
                    let own = self.field(&field.node);
                    measure.add(&own);
                }
                Selection::InlineFragment(inline) => {
                    let inner = self.selection_set(&inline.node.selection_set.node);
                    measure.add(&inner);
                }
                Selection::FragmentSpread(spread) => {
                    // An unknown fragment is validation's to report; it adds nothing here.
                    let name = spread.node.fragment_name.node.as_str();
                    if let Some(fragment) = self.fragments.get(name) {
                        measure.add(fragment);
                    }
                }
            }
        }
        measure
    }

    /// A field and what it selects, the field itself at level 1.
    fn field(&mut self, field: &'a Field) -> Measure {
        let below = self.selection_set(&field.selection_set.node);
        let (counts, pending_totals) = counts::charge(field, below.pending_totals);
        let mut own = Measure {
            selections: below.selections,
            aliases: below.aliases.saturating_add(field.alias.is_some().into()),
            top_fields: 1,
            counts: below.counts.saturating_add(counts),
            pending_totals,
            ..Measure::default()
        };
        let name = field.name.node.as_str();
        if name == "__schema" || name == "__type" {
            let deepest = below.plain_depth.max(below.introspection_depth);
            own.introspection_depth = deepest + 1;
        } else {
            own.plain_depth = below.plain_depth + 1;
            if below.introspection_depth > 0 {
                own.introspection_depth = below.introspection_depth + 1;
            }
        }
        own
    }
}

/// Names of the fragments spread anywhere in `set` (repeats included).
fn spreads<'a>(set: &'a SelectionSet, found: &mut Vec<&'a str>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => spreads(&field.node.selection_set.node, found),
            Selection::InlineFragment(inline) => spreads(&inline.node.selection_set.node, found),
            Selection::FragmentSpread(spread) => {
                found.push(spread.node.fragment_name.node.as_str())
            }
        }
    }
}

type Definitions<'a> = HashMap<&'a str, &'a Positioned<FragmentDefinition>>;

/// The fragment graph: for each fragment, how many distinct defined fragments it spreads, and
/// which fragments spread it; also the spreads looked at.
struct Graph<'a> {
    waiting_on: HashMap<&'a str, usize>,
    dependents: HashMap<&'a str, Vec<&'a str>>,
    visited: u64,
}

fn graph<'a>(definitions: &Definitions<'a>) -> Graph<'a> {
    let mut graph = Graph {
        waiting_on: HashMap::with_capacity(definitions.len()),
        dependents: HashMap::new(),
        visited: 0,
    };
    for (&name, fragment) in definitions {
        let mut used = Vec::new();
        spreads(&fragment.node.selection_set.node, &mut used);
        graph.visited += used.len() as u64;
        used.sort_unstable();
        used.dedup();
        used.retain(|used| definitions.contains_key(used));
        graph.waiting_on.insert(name, used.len());
        for used in used {
            graph.dependents.entry(used).or_default().push(name);
        }
    }
    graph
}

/// Every fragment's measure, each computed once, after those it spreads (Kahn's algorithm).
/// Fragments left over are in, or lead to, a cycle: refused.
fn measure_fragments(doc: &ExecutableDocument) -> ServerResult<Measurer<'_>> {
    let definitions: Definitions = (doc.fragments.iter())
        .map(|(name, fragment)| (name.as_str(), fragment))
        .collect();
    let Graph {
        mut waiting_on,
        dependents,
        visited,
    } = graph(&definitions);
    let mut ready: VecDeque<&str> = (waiting_on.iter())
        .filter(|(_, waiting)| **waiting == 0)
        .map(|(name, _)| *name)
        .collect();
    let mut measurer = Measurer {
        fragments: HashMap::with_capacity(definitions.len()),
        visited,
    };
    while let Some(name) = ready.pop_front() {
        let measure = measurer.selection_set(&definitions[name].node.selection_set.node);
        measurer.fragments.insert(name, measure);
        for &dependent in dependents.get(name).into_iter().flatten() {
            if let Some(waiting) = waiting_on.get_mut(dependent) {
                *waiting -= 1;
                if *waiting == 0 {
                    ready.push_back(dependent);
                }
            }
        }
    }
    let cyclic = (definitions.keys())
        .filter(|name| !measurer.fragments.contains_key(*name))
        .min();
    match cyclic {
        None => Ok(measurer),
        Some(name) => Err(too_big(format!(
            "fragment \"{name}\" leads to a cycle of fragment spreads"
        ))),
    }
}

/// Measures every operation of `doc`; also returns the number of selections looked at.
pub fn measure(doc: &ExecutableDocument) -> ServerResult<(Vec<Measure>, u64)> {
    let mut measurer = measure_fragments(doc)?;
    let operations = (doc.operations.iter())
        .map(|(_, operation)| measurer.selection_set(&operation.node.selection_set.node))
        .collect();
    Ok((operations, measurer.visited))
}

/// What the counts of the operation `name` (the only one when `None`) cost, fragments
/// spread; 0 when there is no such operation (validation reports it).
pub fn count_charge(doc: &ExecutableDocument, name: Option<&str>) -> ServerResult<u64> {
    let mut measurer = measure_fragments(doc)?;
    let operation = (doc.operations.iter())
        .find(|(op_name, _)| name.is_none() || op_name.map(|n| n.as_str()) == name);
    Ok(operation.map_or(0, |(_, operation)| {
        let measure = measurer.selection_set(&operation.node.selection_set.node);
        measure
            .counts
            .saturating_add(counts::unclaimed(measure.pending_totals))
    }))
}

/// Depth, aliases, root fields and expanded size of every operation in `doc`, in time linear in
/// the document: refused documents never reach async-graphql's visitors, which spread every
/// fragment again. The expanded size of all operations together is held to `max_complexity`
/// (each field costs at least 1 there; spreads and inline fragments count here too).
pub fn check_document(doc: &ExecutableDocument, limits: &Limits) -> ServerResult<()> {
    let (operations, _) = measure(doc)?;
    let total = (operations.iter()).fold(0u64, |total, m| total.saturating_add(m.selections));
    if total > limits.max_complexity as u64 {
        return Err(too_big(format!(
            "the document has more than {} selections once its fragments are spread",
            limits.max_complexity
        )));
    }
    let deeper = |depth: u64, limit: usize| match depth > limit as u64 {
        true => Err(too_big(format!(
            "the operation is deeper than {limit} levels"
        ))),
        false => Ok(()),
    };
    for measure in &operations {
        deeper(measure.plain_depth, limits.max_depth)?;
        deeper(measure.introspection_depth, limits.max_introspection_depth)?;
        if measure.aliases > limits.max_aliases as u64 {
            return Err(too_big(format!("more than {} aliases", limits.max_aliases)));
        }
        if measure.top_fields > limits.max_root_fields as u64 {
            let max = limits.max_root_fields;
            return Err(too_big(format!("more than {max} root fields")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn check(query: &str) -> ServerResult<()> {
        check_document(&parse_query(query).unwrap(), &Limits::default())
    }

    /// `{ ...F0 }` and `fragments` fragments, each spreading the next one twice.
    pub fn doubled_chain(fragments: usize) -> String {
        let mut doc = String::from("{ ...F0 }");
        for i in 0..fragments - 1 {
            doc.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        doc + &format!(" fragment F{} on Query {{ __typename }}", fragments - 1)
    }

    #[test]
    fn doubled_spreads_are_measured_in_linear_time_and_refused() {
        for fragments in [23, 40, 200] {
            let doc = parse_query(doubled_chain(fragments)).unwrap();
            let (operations, visited) = measure(&doc).unwrap();
            // 2 spreads per fragment, looked at twice (dependencies, then measure), plus the
            // last fragment's field and the operation's spread: nothing is spread again.
            assert!(
                visited <= 4 * fragments as u64 + 2,
                "{fragments}: {visited}"
            );
            // Spread out: 3 × 2^(fragments - 1) - 1 selections.
            assert!(operations[0].selections >= 1u64 << (fragments - 1).min(63));
            let err = check_document(&doc, &Limits::default()).unwrap_err();
            assert!(
                err.message.contains("once its fragments are spread"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn measures_match_the_spread_document() {
        let spread = "{ x: a { b ...F } ... on Query { c { d } } } \
                      fragment F on A { e { f } ... on A { g: h } }";
        let written = "{ x: a { b e { f } ... on A { g: h } } ... on Query { c { d } } }";
        let (spread, _) = measure(&parse_query(spread).unwrap()).unwrap();
        let (written, _) = measure(&parse_query(written).unwrap()).unwrap();
        let expected = Measure {
            selections: 9,
            aliases: 2,
            top_fields: 2,
            plain_depth: 3,
            ..Measure::default()
        };
        assert_eq!(written, [expected]);
        // The spread itself is one more selection.
        assert_eq!(
            spread,
            [Measure {
                selections: 10,
                ..expected
            }]
        );
    }

    #[test]
    fn depth_is_limited_but_introspection_gets_more_room() {
        assert!(check("{ a { b { c { d { e { f } } } } } }").is_ok());
        assert!(check("{ a { b { c { d { e { f { g } } } } } } }").is_err());
        let deep_types = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }";
        assert!(check(deep_types).is_ok());
        let abusive = format!(
            "{{ __schema {{ types {{ {} name {} }} }} }}",
            "fields { type { ".repeat(10),
            "} } ".repeat(10)
        );
        assert!(check(&abusive).is_err());
        // Through fragments: the depth where a fragment is spread counts.
        let through = "{ a { ...F } } fragment F on A { b { c { d { e { f { g } } } } } }";
        let err = check(through).unwrap_err();
        assert!(err.message.contains("deeper than 6"), "{err:?}");
        let introspection = "{ a { __type(name: \"A\") { ...T } } } \
            fragment T on __Type { fields { type { ofType { ofType { ofType { name } } } } } }";
        assert!(check(introspection).is_ok());
    }

    #[test]
    fn aliases_and_root_fields_are_counted_through_fragments() {
        let aliases: String = (0..16)
            .map(|i| format!("a{i}: contactStats {{ total }} "))
            .collect();
        assert!(check(&format!("{{ {aliases} }}")).is_err());
        let eight: String = (0..8).map(|i| format!("a{i}: total ")).collect();
        let twice = format!("{{ s {{ ...A ...A }} }} fragment A on S {{ {eight} }}");
        assert!(check(&twice).unwrap_err().message.contains("aliases"));
        let roots: String = (0..21).map(|i| format!("f{i} ")).collect();
        let err = check(&format!(
            "query {{ ...R }} fragment R on Query {{ {roots} }}"
        ));
        assert!(err.unwrap_err().message.contains("root fields"));
    }

    #[test]
    fn fragment_cycles_are_refused() {
        let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { x { ...A } }";
        let err = check(cycle).unwrap_err();
        assert!(err.message.contains("cycle of fragment spreads"), "{err:?}");
        assert!(check("{ ...A } fragment A on Query { a ...A }").is_err());
        // Spreading an unknown fragment is validation's to report.
        assert!(check("{ ...Missing }").is_ok());
    }
}
