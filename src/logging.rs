//! Logs: the subscriber set-up, and masking of what must never reach a log (phone numbers,
//! metadata values). Values reach logs only through [`mask`]; requests are logged by path,
//! never by query string, since `GET /graphql` carries variables there.

use std::{borrow::Cow, io::IsTerminal};

use clap::Args;
use tracing_subscriber::EnvFilter;

/// Logging; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log filter, in `tracing` syntax (e.g. `info`, `contacts_server=debug`).
    #[arg(long = "log", env = "RUST_LOG", default_value = "info")]
    pub filter: String,

    /// Log format: `json` lines for log pipelines, `text` for people, `auto`: text on a
    /// terminal, JSON otherwise.
    #[arg(long = "log-format", env = "LOG_FORMAT", default_value = "auto", value_parser = ["auto", "text", "json"])]
    pub format: String,

    /// Log to standard error (the tools, whose standard output is data) instead of
    /// standard output.
    #[arg(skip)]
    pub to_stderr: bool,
}

/// Installs the global log subscriber: JSON lines unless the format is `text` (or `auto` on a
/// terminal, where a person reads them).
pub fn init(args: &LogArgs) {
    let filter = EnvFilter::try_new(&args.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match args.format.as_str() {
        "json" => true,
        "text" => false,
        _ => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if args.to_stderr {
        builder.with_writer(std::io::stderr).init();
    } else if json {
        // The span list carries the request id and the operation onto every line.
        builder.json().with_current_span(false).init();
    } else {
        builder.init();
    }
}

/// Longest text a log line carries for one client-chosen value (a path, an operation name):
/// a client must not be able to write megabytes into the log with one request.
pub const MAX_LOGGED_CHARS: usize = 200;

/// `text` cut to [`MAX_LOGGED_CHARS`] characters (`…` marks the cut), then [`mask`]ed.
pub fn clip_and_mask(text: &str) -> String {
    match text.char_indices().nth(MAX_LOGGED_CHARS) {
        Some((cut, _)) => format!("{}…", mask(&text[..cut])),
        None => mask(text).into_owned(),
    }
}

/// Runs of this many digits or more (separators allowed) may be a phone number.
const MIN_MASKED_DIGITS: usize = 7;

/// `text` with every digit of a possible phone number masked but the last two:
/// `+56 9 1234 5678` becomes `+** * **** **78`. Shorter numbers (ports, counts, years) stay.
pub fn mask(text: &str) -> Cow<'_, str> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Option<Vec<char>> = None;
    let mut start = 0;
    while start < chars.len() {
        if !chars[start].is_ascii_digit() {
            start += 1;
            continue;
        }
        // A run: digits, possibly separated by spaces, dashes, dots or parentheses.
        let mut end = start;
        let mut digits = Vec::new();
        let mut cursor = start;
        while cursor < chars.len() {
            if chars[cursor].is_ascii_digit() {
                digits.push(cursor);
                end = cursor + 1;
                cursor += 1;
            } else {
                // Up to two separators between digits: `) ` in `(202) 555`.
                let gap = chars[cursor..]
                    .iter()
                    .take(3)
                    .take_while(|c| is_separator(**c))
                    .count();
                if (1..=2).contains(&gap)
                    && chars.get(cursor + gap).is_some_and(char::is_ascii_digit)
                {
                    cursor += gap;
                } else {
                    break;
                }
            }
        }
        if digits.len() >= MIN_MASKED_DIGITS {
            let masked = out.get_or_insert_with(|| chars.clone());
            for &index in &digits[..digits.len() - 2] {
                masked[index] = '*';
            }
        }
        start = end.max(start + 1);
    }
    match out {
        Some(masked) => Cow::Owned(masked.into_iter().collect()),
        None => Cow::Borrowed(text),
    }
}

fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')')
}

#[cfg(test)]
mod tests {
    #[test]
    fn client_chosen_values_are_clipped_before_they_are_logged() {
        let long = "a".repeat(60_000);
        let logged = super::clip_and_mask(&long);
        assert_eq!(logged.chars().count(), super::MAX_LOGGED_CHARS + 1);
        assert!(logged.ends_with('…'));
        assert_eq!(super::clip_and_mask("/graphql"), "/graphql");
    }

    use super::mask;

    #[test]
    fn phone_numbers_keep_only_their_last_two_digits() {
        assert_eq!(mask("+56912345678"), "+*********78");
        assert_eq!(mask("dup +56 9 1234 5678!"), "dup +** * **** **78!");
        assert_eq!(mask("(202) 555-0123"), "(***) ***-**23");
        assert_eq!(mask("912345678"), "*******78");
    }

    #[test]
    fn short_numbers_and_plain_text_stay() {
        assert_eq!(mask("port 8000, 42 rows"), "port 8000, 42 rows");
        assert_eq!(mask("no digits"), "no digits");
        assert_eq!(mask("123456"), "123456");
        assert!(matches!(mask("abc 12"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn masking_is_total_on_any_text() {
        for text in [
            "",
            "1",
            "1 ",
            " 1",
            "1-",
            "1234567-",
            "é12345678ü",
            "--------",
        ] {
            let masked = mask(text);
            assert_eq!(masked.chars().count(), text.chars().count(), "{text}");
        }
    }
}
