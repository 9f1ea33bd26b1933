//! Operation limits, checked before anything runs: document size in tokens, depth (with a
//! separate allowance for introspection, so GraphiQL keeps working), aliases and root fields.
//! Complexity and directives per field are async-graphql's own limits, set on the schema.

use std::{collections::HashSet, sync::Arc};

use async_graphql::{
    ServerError, ServerResult, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

use super::codes;

/// The limits; every one configurable. Defaults follow GraphQL Armor's spirit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    /// Depth allowed below `__schema` / `__type` (GraphiQL's introspection query needs ~13).
    pub max_introspection_depth: usize,
    /// Cost: each field 1, a connection's fields multiplied by its `first`/`last`.
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_root_fields: usize,
    pub max_directives: usize,
    pub max_tokens: usize,
    pub introspection: bool,
    pub suggestions: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 6,
            max_introspection_depth: 15,
            max_complexity: 5_000,
            max_aliases: 15,
            max_root_fields: 20,
            max_directives: 10,
            max_tokens: 1_000,
            introspection: true,
            suggestions: true,
        }
    }
}

fn too_big(message: String) -> ServerError {
    codes::with_code(
        ServerError::new(message, None),
        crate::error::ErrorCode::GraphqlValidationFailed,
    )
}

/// Counts lexical tokens (names, numbers, strings, punctuators; comments and commas are
/// free), stopping as soon as `max` is passed, so a huge document costs little to refuse.
pub fn check_tokens(query: &str, max: usize) -> ServerResult<()> {
    let bytes = query.as_bytes();
    let (mut i, mut count) = (0, 0usize);
    while i < bytes.len() {
        let byte = bytes[i];
        i += match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => 1,
            b'#' => bytes[i..]
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(bytes.len() - i),
            b'"' => {
                count += 1;
                string_length(&bytes[i..])
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                count += 1;
                3
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                count += 1;
                bytes[i..]
                    .iter()
                    .position(|&b| {
                        !(b.is_ascii_alphanumeric()
                            || b == b'_'
                            || b == b'.'
                            || b == b'-'
                            || b == b'+')
                    })
                    .unwrap_or(bytes.len() - i)
            }
            _ => {
                count += 1;
                1
            }
        };
        if count > max {
            return Err(too_big(format!("the document has more than {max} tokens")));
        }
    }
    Ok(())
}

/// Bytes of the string literal at the start of `rest` (block strings included).
fn string_length(rest: &[u8]) -> usize {
    if rest.starts_with(b"\"\"\"") {
        let end = rest[3..].windows(3).position(|w| w == b"\"\"\"");
        return end.map_or(rest.len(), |e| e + 6);
    }
    let mut i = 1;
    while i < rest.len() {
        match rest[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    rest.len()
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    limits: &'a Limits,
    aliases: usize,
    /// Fragments being expanded, to stop cycles (validation reports them later).
    expanding: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        depth: usize,
        introspection: bool,
    ) -> ServerResult<()> {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if field.alias.is_some() {
                        self.aliases += 1;
                        if self.aliases > self.limits.max_aliases {
                            return Err(too_big(format!(
                                "more than {} aliases",
                                self.limits.max_aliases
                            )));
                        }
                    }
                    let name = field.name.node.as_str();
                    let inside = introspection || name == "__schema" || name == "__type";
                    let limit = if inside {
                        self.limits.max_introspection_depth
                    } else {
                        self.limits.max_depth
                    };
                    if depth > limit {
                        return Err(too_big(format!(
                            "the operation is deeper than {limit} levels"
                        )));
                    }
                    self.selection_set(&field.selection_set.node, depth + 1, inside)?;
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set.node, depth, introspection)?
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(fragment) = self.doc.fragments.get(name) else {
                        continue;
                    };
                    if self.expanding.insert(name) {
                        self.selection_set(
                            &fragment.node.selection_set.node,
                            depth,
                            introspection,
                        )?;
                        self.expanding.remove(name);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Fields selected at the root of `set`, through fragments.
fn root_fields(doc: &ExecutableDocument, set: &SelectionSet, seen: &mut HashSet<String>) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(_) => 1,
            Selection::InlineFragment(f) => root_fields(doc, &f.node.selection_set.node, seen),
            Selection::FragmentSpread(s) => {
                let name = s.node.fragment_name.node.to_string();
                match doc.fragments.get(s.node.fragment_name.node.as_str()) {
                    Some(f) if seen.insert(name) => {
                        root_fields(doc, &f.node.selection_set.node, seen)
                    }
                    _ => 0,
                }
            }
        })
        .sum()
}

/// Depth, aliases and root fields of every operation in `doc`.
pub fn check_document(doc: &ExecutableDocument, limits: &Limits) -> ServerResult<()> {
    let mut walk = Walk {
        doc,
        limits,
        aliases: 0,
        expanding: HashSet::new(),
    };
    for (_, operation) in doc.operations.iter() {
        let set = &operation.node.selection_set.node;
        if root_fields(doc, set, &mut HashSet::new()) > limits.max_root_fields {
            return Err(too_big(format!(
                "more than {} root fields",
                limits.max_root_fields
            )));
        }
        // A field at the root is at depth 1.
        walk.selection_set(set, 1, false)?;
    }
    Ok(())
}

/// Applies [`check_tokens`] and [`check_document`] to every request, WebSocket ones included.
pub struct LimitsExtension(pub Limits);

impl ExtensionFactory for LimitsExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Checker(self.0))
    }
}

struct Checker(Limits);

#[async_graphql::async_trait::async_trait]
impl Extension for Checker {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // Over HTTP the document cache has checked it already.
        let checked = ctx.data_opt::<super::documents::LimitsChecked>().is_some();
        if !checked {
            check_tokens(query, self.0.max_tokens)?;
        }
        let doc = next.run(ctx, query, variables).await?;
        if !checked {
            check_document(&doc, &self.0)?;
        }
        Ok(doc)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn check(query: &str) -> ServerResult<()> {
        check_tokens(query, Limits::default().max_tokens)?;
        check_document(&parse_query(query).unwrap(), &Limits::default())
    }

    #[test]
    fn counts_tokens_like_a_lexer() {
        assert!(check_tokens("{ a b c }", 5).is_ok());
        assert!(check_tokens("{ a b c d }", 5).is_err());
        assert!(
            check_tokens(
                "# many words in a comment\n{ a(s: \"many words in a string\") }",
                8
            )
            .is_ok()
        );
        assert!(check_tokens("{ a(s: \"\"\"block \"quoted\" string\"\"\") ...F }", 10).is_ok());
        assert!(check_tokens("{ a(s: \"\"\"block \"quoted\" string\"\"\") ...F }", 9).is_err());
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
    }

    #[test]
    fn aliases_and_root_fields_are_counted_through_fragments() {
        let aliases: String = (0..16)
            .map(|i| format!("a{i}: contactStats {{ total }} "))
            .collect();
        assert!(check(&format!("{{ {aliases} }}")).is_err());
        let roots: String = (0..21).map(|i| format!("f{i} ")).collect();
        assert!(
            check(&format!(
                "query {{ ...R }} fragment R on Query {{ {roots} }}"
            ))
            .is_err()
        );
    }

    #[test]
    fn fragment_cycles_do_not_hang() {
        assert!(
            check("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }").is_ok()
        );
    }
}
