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
