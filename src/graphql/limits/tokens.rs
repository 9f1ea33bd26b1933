//! The document's lexical tokens, split exactly as async-graphql's parser (its pest grammar)
//! splits them, so the token limit can be applied before parsing and cannot be dodged by text
//! the counter reads differently from the parser (a comment ended by a lone `\r`, an escaped
//! `\"""` in a block string, `a...F` or `00` with no space between). Written here, not taken
//! from a crate: async-graphql-parser keeps its grammar's rules private, and what must match
//! is that grammar, not another GraphQL lexer's reading (`generated.rs` checks it does).

use async_graphql::ServerResult;

use super::cost::MAX_NAME_BYTES;

/// Byte-order mark: whitespace to GraphQL.
const BOM: &[u8] = "\u{feff}".as_bytes();

/// Yields the byte range of each token: names, numbers, strings and punctuators. Whitespace,
/// commas, line terminators, byte-order marks and comments are not tokens.
pub struct Tokens<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Tokens<'a> {
    pub fn new(query: &'a str) -> Self {
        Self {
            bytes: query.as_bytes(),
            at: 0,
        }
    }

    fn rest(&self) -> &'a [u8] {
        &self.bytes[self.at..]
    }

    /// Skips whitespace and comments. A comment ends before `\r` or `\n`, as in the grammar.
    fn skip_ignored(&mut self) {
        while let Some(&byte) = self.bytes.get(self.at) {
            match byte {
                b' ' | b'\t' | b',' | b'\n' | b'\r' => self.at += 1,
                b'#' => {
                    let end = self.rest().iter().position(|&b| b == b'\n' || b == b'\r');
                    self.at += end.unwrap_or(self.rest().len());
                }
                _ if self.rest().starts_with(BOM) => self.at += BOM.len(),
                _ => return,
            }
        }
    }

    fn digits(&self, from: usize) -> usize {
        self.bytes[from.min(self.bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    }

    /// `int`, then an optional `.digits` and an optional exponent (the grammar's `float`).
    fn number(&self) -> usize {
        let mut end = self.at + usize::from(self.bytes[self.at] == b'-');
        match self.bytes.get(end) {
            Some(b'0') => end += 1,
            Some(b'1'..=b'9') => end += self.digits(end),
            // A lone `-`: not a number; the parser refuses it.
            _ => return 1,
        }
        if self.bytes.get(end) == Some(&b'.') && self.digits(end + 1) > 0 {
            end += 1 + self.digits(end + 1);
        }
        if matches!(self.bytes.get(end), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.bytes.get(end + 1), Some(b'+' | b'-')));
            let digits = self.digits(end + 1 + sign);
            if digits > 0 {
                end += 1 + sign + digits;
            }
        }
        end - self.at
    }

    /// A block string ends at the first `"""` not escaped as `\"""`; a string ends at an
    /// unescaped `"` (or, unterminated, before a line end, which the parser refuses).
    fn string(&self) -> usize {
        let rest = self.rest();
        if rest.starts_with(b"\"\"\"") {
            let mut i = 3;
            while i < rest.len() {
                if rest[i..].starts_with(b"\\\"\"\"") {
                    i += 4;
                } else if rest[i..].starts_with(b"\"\"\"") {
                    return i + 3;
                } else {
                    i += 1;
                }
            }
            return rest.len();
        }
        let mut i = 1;
        while let Some(&byte) = rest.get(i) {
            match byte {
                b'"' => return i + 1,
                b'\n' | b'\r' => return i,
                b'\\' if matches!(rest.get(i + 1), Some(b'\n' | b'\r') | None) => return i + 1,
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        rest.len()
    }

    fn name(&self) -> usize {
        self.rest()
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count()
    }

    /// Any other character, whole (so ranges stay on character boundaries); the parser
    /// refuses those outside strings and comments anyway.
    fn other(&self) -> usize {
        let lead = self.bytes[self.at];
        match lead {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            _ => 4,
        }
        .min(self.rest().len())
    }
}

impl Iterator for Tokens<'_> {
    type Item = std::ops::Range<usize>;

    fn next(&mut self) -> Option<Self::Item> {
        self.skip_ignored();
        let byte = *self.bytes.get(self.at)?;
        let length = match byte {
            b'"' => self.string(),
            b'.' if self.rest().starts_with(b"...") => 3,
            b'-' | b'0'..=b'9' => self.number(),
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => self.name(),
            _ => self.other(),
        };
        let start = self.at;
        self.at += length;
        Some(start..self.at)
    }
}

/// The number of tokens in `query`, or a `GRAPHQL_VALIDATION_FAILED` error as soon as it
/// passes `max` or a name (an alias, repeated in the answer once per row) is longer than
/// [`MAX_NAME_BYTES`], so a huge document costs little to refuse.
pub fn check_tokens(query: &str, max: usize) -> ServerResult<usize> {
    let mut count = 0;
    for range in Tokens::new(query) {
        count += 1;
        if count > max {
            return Err(super::too_big(format!(
                "the document has more than {max} tokens"
            )));
        }
        let name = query
            .as_bytes()
            .get(range.start)
            .is_some_and(|&lead| lead == b'_' || lead.is_ascii_alphabetic());
        if name && range.len() > MAX_NAME_BYTES {
            return Err(super::too_big(format!(
                "a name in the document is longer than {MAX_NAME_BYTES} characters"
            )));
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(query: &str) -> Vec<&str> {
        Tokens::new(query).map(|range| &query[range]).collect()
    }

    #[test]
    fn comments_strings_and_commas_are_free() {
        assert!(check_tokens("{ a b c }", 5).is_ok());
        assert!(check_tokens("{ a b c d }", 5).is_err());
        let commented = "# many words in a comment\n{ a(s: \"many words in a string\") }";
        assert_eq!(check_tokens(commented, 100).ok(), Some(8));
        let block = "{ a(s: \"\"\"block \"quoted\" string\"\"\") ...F }";
        assert_eq!(check_tokens(block, 100).ok(), Some(10));
    }

    #[test]
    fn names_are_held_to_their_length_but_strings_are_not() {
        let name = |n: usize| format!("{{ {}: id }}", "a".repeat(n));
        assert!(check_tokens(&name(MAX_NAME_BYTES), 10).is_ok());
        assert!(check_tokens(&name(MAX_NAME_BYTES + 1), 10).is_err());
        let string = format!("{{ a(s: \"{}\") }}", "a".repeat(10 * MAX_NAME_BYTES));
        assert!(check_tokens(&string, 10).is_ok());
    }

    #[test]
    fn a_comment_ends_at_a_lone_carriage_return() {
        assert_eq!(tokens("# hidden?\r{ a b }"), ["{", "a", "b", "}"]);
        assert_eq!(tokens("#x\r\n{a}#y\n,"), ["{", "a", "}"]);
        let hidden = format!("# comment\r{{ {} }}", "a ".repeat(50));
        assert!(check_tokens(&hidden, 20).is_err());
    }

    #[test]
    fn escaped_quotes_do_not_end_strings() {
        let block = r#"{ a(s: """x\""" y""") b }"#;
        assert_eq!(
            tokens(block),
            ["{", "a", "(", "s", ":", r#""""x\""" y""""#, ")", "b", "}"]
        );
        assert_eq!(tokens(r#""a\"b\\" c"#), [r#""a\"b\\""#, "c"]);
        assert_eq!(tokens(r#""\u00e9""""#), [r#""\u00e9""#, r#""""#]);
    }

    #[test]
    fn numbers_names_and_spreads_split_as_the_grammar_says() {
        assert_eq!(
            tokens("-1.5e3 2E+7 0.5 -0"),
            ["-1.5e3", "2E+7", "0.5", "-0"]
        );
        // `int` is "0" or digits without a leading zero: `007` is three numbers.
        assert_eq!(tokens("[007]"), ["[", "0", "0", "7", "]"]);
        assert_eq!(tokens("a...F...on"), ["a", "...", "F", "...", "on"]);
        assert_eq!(
            tokens("$v:[Int!]!"),
            ["$", "v", ":", "[", "Int", "!", "]", "!"]
        );
        assert_eq!(tokens("\u{feff}{ \u{feff}a }"), ["{", "a", "}"]);
        assert_eq!(tokens("{ é }"), ["{", "é", "}"]);
        assert_eq!(tokens("1. 1e -"), ["1", ".", "1", "e", "-"]);
    }
}
