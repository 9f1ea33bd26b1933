//! Running the real `contacts-server` binary.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    process::{Child, Command, Stdio},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_contacts-server");

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// The server on `port` with `database_url` (the default when `None`), logging to a pipe.
pub fn command(database_url: Option<&str>, port: u16) -> Command {
    let mut command = Command::new(BIN);
    match database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    command
        .env("PORT", port.to_string())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Reads the server's log until it listens (an event, not the passage of time); returns the
/// log so far.
pub fn wait_until_listening(child: &mut Child) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut log = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("server output");
        let listening = line.contains("GraphiQL and the API at");
        log.push(line);
        if listening {
            return log;
        }
    }
    panic!("server exited during start-up:\n{}", log.join("\n"));
}
