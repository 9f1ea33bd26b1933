//! Running the real `contacts-server` binary.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_contacts-server");

/// The server on any free port with `database_url` (the default when `None`), logging to a
/// pipe; [`wait_until_listening`] tells the address it got.
pub fn command(database_url: Option<&str>) -> Command {
    let mut command = Command::new(BIN);
    match database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    command
        .env("PORT", "0")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// A started server: its base URL and its start-up log.
pub struct Started {
    pub base: String,
    pub log: Vec<String>,
}

/// Reads the server's log until it listens (an event, not the passage of time).
pub fn wait_until_listening(child: &mut Child) -> Started {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut log = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("server output");
        let address = line
            .split("GraphiQL and the API at ")
            .nth(1)
            .map(|url| url.trim_end_matches("/graphql").to_owned());
        log.push(line);
        if let Some(base) = address {
            return Started { base, log };
        }
    }
    panic!("server exited during start-up:\n{}", log.join("\n"));
}
