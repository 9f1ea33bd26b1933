//! Several instances starting at the same moment on an empty database all come up, and the
//! migrations run once.

mod common;

use std::process::Child;

use common::process::{command, wait_until_listening};
use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, Statement};

#[tokio::test]
async fn instances_starting_together_all_come_up_and_migrate_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = common::fresh_database_url(&dir).await;
    let mut children: Vec<Child> = (0..3)
        .map(|_| command(Some(&url)).spawn().expect("start server"))
        .collect();
    let logs: Vec<Vec<String>> = children
        .iter_mut()
        .map(|child| wait_until_listening(child).log)
        .collect();
    for child in &mut children {
        child.kill().expect("stop server");
        child.wait().expect("reap");
    }
    let applied = logs
        .iter()
        .filter(|log| log.iter().any(|l| l.contains("has been applied")))
        .count();
    assert_eq!(
        applied, 1,
        "exactly one instance applies the migration:\n{logs:#?}"
    );

    let db = Database::connect(&url).await.expect("connect");
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .expect("count")
        .expect("a row");
    let recorded: i64 = row.try_get("", "n").expect("n");
    assert_eq!(recorded, migration::Migrator::migrations().len() as i64);
}
