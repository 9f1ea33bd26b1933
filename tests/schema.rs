//! `schema.graphql` must be exactly the SDL the server serves.
//! To refresh it after a schema change: `UPDATE_SCHEMA=1 cargo test --test schema`.

mod common;

use common::TestApp;

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");

#[test]
fn schema_file_matches_the_code() {
    let sdl = contacts_server::graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(SCHEMA_FILE, &sdl).expect("write schema.graphql");
    }
    let file = std::fs::read_to_string(SCHEMA_FILE).unwrap_or_default();
    assert!(
        file == sdl,
        "schema.graphql is out of date; run `UPDATE_SCHEMA=1 cargo test --test schema` and commit it"
    );
}

#[tokio::test]
async fn served_schema_matches_the_file() {
    let app = TestApp::start().await;
    let served = app
        .client
        .get(app.url("/schema.graphql"))
        .send()
        .await
        .expect("request");
    assert_eq!(served.status(), 200);
    let served = served.text().await.expect("body");
    let file = std::fs::read_to_string(SCHEMA_FILE).expect("schema.graphql");
    assert_eq!(served, file);
}

const INTROSPECTION: &str = "{ __schema { types { kind name specifiedByURL
    fields(includeDeprecated: true) { name args { name type { ...T } } type { ...T } }
    inputFields { name type { ...T } } enumValues(includeDeprecated: true) { name }
    interfaces { name } possibleTypes { name } }
    directives { name locations args { name type { ...T } } } } }
    fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// `String!`, `[Contact!]!`, … from an introspected type reference.
fn type_ref(value: &serde_json::Value) -> String {
    match value["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&value["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&value["ofType"])),
        _ => value["name"].as_str().unwrap_or_default().to_owned(),
    }
}

fn args(list: &serde_json::Value) -> String {
    let args: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            format!(
                "{}: {}",
                a["name"].as_str().unwrap_or_default(),
                type_ref(&a["type"])
            )
        })
        .collect();
    args.join(", ")
}

const BUILT_IN_SCALARS: [&str; 5] = ["String", "Boolean", "Int", "Float", "ID"];

/// Every fact introspection reports, one line each.
fn introspected_facts(schema: &serde_json::Value) -> std::collections::BTreeSet<String> {
    let mut facts = std::collections::BTreeSet::new();
    for ty in schema["types"].as_array().expect("types") {
        let name = ty["name"].as_str().unwrap_or_default();
        if name.starts_with("__") || BUILT_IN_SCALARS.contains(&name) {
            continue;
        }
        let kind = ty["kind"].as_str().unwrap_or_default();
        facts.insert(format!(
            "{kind} {name} {}",
            ty["specifiedByURL"].as_str().unwrap_or("")
        ));
        for field in ty["fields"].as_array().into_iter().flatten() {
            let (field_name, field_type) = (
                field["name"].as_str().unwrap_or_default(),
                type_ref(&field["type"]),
            );
            facts.insert(format!(
                "{name}.{field_name}({}): {field_type}",
                args(&field["args"])
            ));
        }
        for field in ty["inputFields"].as_array().into_iter().flatten() {
            facts.insert(format!(
                "{name}.{}: {}",
                field["name"].as_str().unwrap_or_default(),
                type_ref(&field["type"])
            ));
        }
        for value in ty["enumValues"].as_array().into_iter().flatten() {
            facts.insert(format!(
                "{name}.{}",
                value["name"].as_str().unwrap_or_default()
            ));
        }
        for other in ["interfaces", "possibleTypes"] {
            for member in ty[other].as_array().into_iter().flatten() {
                facts.insert(format!(
                    "{name} {other} {}",
                    member["name"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    for directive in schema["directives"].as_array().expect("directives") {
        let mut locations: Vec<&str> = directive["locations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l.as_str())
            .collect();
        locations.sort_unstable();
        facts.insert(format!(
            "@{}({}) on {}",
            directive["name"].as_str().unwrap_or_default(),
            args(&directive["args"]),
            locations.join("|")
        ));
    }
    facts
}

/// `FragmentSpread` → `FRAGMENT_SPREAD`: the parser's location names as introspection spells them.
fn screaming_snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Built-in directives the SDL may leave out (GraphQL spec, "Type System"): async-graphql
/// writes `@deprecated` and `@oneOf` only when something in the schema uses them.
const OMITTED_WHEN_UNUSED: [&str; 2] = ["@deprecated(", "@oneOf("];

/// The same facts, read from the SDL in `schema.graphql`.
fn file_facts(sdl: &str) -> std::collections::BTreeSet<String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let document = async_graphql::parser::parse_schema(sdl).expect("schema.graphql parses");
    let mut facts = std::collections::BTreeSet::new();
    let input_args = |list: &[async_graphql::Positioned<
        async_graphql::parser::types::InputValueDefinition,
    >]| {
        list.iter()
            .map(|a| format!("{}: {}", a.node.name.node, a.node.ty.node))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for definition in document.definitions {
        match definition {
            TypeSystemDefinition::Type(ty) => {
                let ty = ty.node;
                let name = ty.name.node.to_string();
                let specified_by = ty
                    .directives
                    .iter()
                    .find(|d| d.node.name.node == "specifiedBy")
                    .and_then(|d| {
                        d.node
                            .get_argument("url")
                            .map(|url| url.node.to_string().trim_matches('"').to_owned())
                    })
                    .unwrap_or_default();
                let kind = match &ty.kind {
                    TypeKind::Scalar => "SCALAR",
                    TypeKind::Object(_) => "OBJECT",
                    TypeKind::Interface(_) => "INTERFACE",
                    TypeKind::Union(_) => "UNION",
                    TypeKind::Enum(_) => "ENUM",
                    TypeKind::InputObject(_) => "INPUT_OBJECT",
                };
                facts.insert(format!("{kind} {name} {specified_by}"));
                let (fields, interfaces) = match &ty.kind {
                    TypeKind::Object(o) => (Some(&o.fields), Some(&o.implements)),
                    TypeKind::Interface(i) => (Some(&i.fields), Some(&i.implements)),
                    _ => (None, None),
                };
                for field in fields.into_iter().flatten() {
                    let field = &field.node;
                    facts.insert(format!(
                        "{name}.{}({}): {}",
                        field.name.node,
                        input_args(&field.arguments),
                        field.ty.node
                    ));
                }
                for interface in interfaces.into_iter().flatten() {
                    facts.insert(format!("{name} interfaces {}", interface.node));
                }
                match &ty.kind {
                    TypeKind::InputObject(input) => {
                        for field in &input.fields {
                            facts.insert(format!(
                                "{name}.{}: {}",
                                field.node.name.node, field.node.ty.node
                            ));
                        }
                    }
                    TypeKind::Enum(e) => {
                        for value in &e.values {
                            facts.insert(format!("{name}.{}", value.node.value.node));
                        }
                    }
                    TypeKind::Union(u) => {
                        for member in &u.members {
                            facts.insert(format!("{name} possibleTypes {}", member.node));
                        }
                    }
                    _ => {}
                }
            }
            TypeSystemDefinition::Directive(directive) => {
                let directive = directive.node;
                let mut locations: Vec<String> = directive
                    .locations
                    .iter()
                    .map(|l| screaming_snake(&format!("{:?}", l.node)))
                    .collect();
                locations.sort_unstable();
                facts.insert(format!(
                    "@{}({}) on {}",
                    directive.name.node,
                    input_args(&directive.arguments),
                    locations.join("|")
                ));
            }
            TypeSystemDefinition::Schema(_) => {}
        }
    }
    facts
}

/// The file says exactly what introspection reports: types, fields, arguments, enum
/// values, interfaces, scalars' `@specifiedBy(url:)` and directives. (Interfaces' possible
/// types are implied by the objects' `implements`.)
#[tokio::test]
async fn schema_file_equals_introspection_directives_included() {
    let app = TestApp::start().await;
    let data = app.data(INTROSPECTION, serde_json::json!({})).await;
    let mut introspected = introspected_facts(&data["__schema"]);
    introspected.retain(|fact| !fact.contains(" possibleTypes ") || fact.starts_with("UNION"));
    let file = std::fs::read_to_string(SCHEMA_FILE).expect("schema.graphql");
    let mut from_file = file_facts(&file);
    from_file.retain(|fact| !fact.contains(" possibleTypes ") || fact.starts_with("UNION"));
    let missing: Vec<_> = introspected
        .difference(&from_file)
        .filter(|fact| {
            let built_in = OMITTED_WHEN_UNUSED.iter().any(|d| fact.starts_with(d));
            let used = file.contains(&format!("@{} ", &fact[1..fact.find('(').unwrap_or(1)]));
            !built_in || used
        })
        .collect();
    let extra: Vec<_> = from_file.difference(&introspected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "only introspection: {missing:#?}\nonly the file: {extra:#?}"
    );
    assert!(file.contains(
        "scalar DateTime @specifiedBy(url: \"https://datatracker.ietf.org/doc/html/rfc3339\")"
    ));
}
