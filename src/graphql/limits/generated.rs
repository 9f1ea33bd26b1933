//! Property test: documents generated from the grammar, their tokens separated by every kind
//! of ignored text (comments ended by `\r`, `\n` or `\r\n`, commas, byte-order marks), are
//! accepted by async-graphql's parser and split by [`Tokens`] into exactly the generated tokens.

use async_graphql::parser::parse_query;
use proptest::prelude::*;

use super::tokens::Tokens;

/// How a token is separated from the one before it.
#[derive(Clone, Copy)]
enum Gap {
    /// Any ignored text, at least one item.
    Any,
    /// None at all (inside the grammar's atomic `type_` rule).
    Glued,
    /// Whitespace only (between `on` and the type name).
    Space,
}

const NAMES: &[&str] = &["a", "b_1", "_x", "Contact", "f9", "__typename", "onX"];
const NUMBERS: &[&str] = &["0", "-12", "7", "-1.5e3", "2E+7", "0.25", "3e-2", "-0"];
const STRINGS: &[&str] = &[
    r#""""#,
    r#""plain # not a comment""#,
    r#""esc \" \\ \/ \b \n \u00e9 é""#,
    r#""""block""""#,
    "\"\"\"multi\r\nline\rwith # and \\\"\"\" and \" quotes\"\"\"",
    r#""""\""" at start""""#,
];
const IGNORED: &[&str] = &[
    " ",
    "\t",
    ",",
    "\n",
    "\r",
    "\r\n",
    "\u{feff}",
    "#c\r",
    "# x y z\n",
    "#\r\n",
    "# }{\r",
];
const SPACES: &[&str] = &[" ", "\t", ",", "\n", "\r", "\r\n", "\u{feff}"];

/// A small deterministic generator (xorshift), seeded by proptest.
struct Gen {
    state: u64,
    tokens: Vec<(String, Gap)>,
}

impl Gen {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }

    fn below(&mut self, n: usize) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % n as u64) as usize
    }

    fn push(&mut self, text: &str) {
        self.push_gap(text, Gap::Any);
    }

    fn push_gap(&mut self, text: &str, gap: Gap) {
        self.tokens.push((text.to_owned(), gap));
    }

    fn push_pick(&mut self, from: &[&str]) {
        let token = self.pick(from);
        self.push(token);
    }

    fn name(&mut self) {
        self.push_pick(NAMES);
    }

    /// `on Type` of a fragment: the grammar wants whitespace (and no comment) between them.
    fn type_condition(&mut self) {
        self.push("on");
        let name = self.pick(NAMES);
        self.push_gap(name, Gap::Space);
    }

    fn value(&mut self, depth: usize) {
        match self.below(if depth > 2 { 5 } else { 7 }) {
            0 => self.push_pick(NUMBERS),
            1 => self.push_pick(STRINGS),
            2 => self.push_pick(&["true", "false", "null", "RED", "onY"]),
            3 | 4 => {
                self.push("$");
                self.name();
            }
            5 => {
                self.push("[");
                (0..self.below(3)).for_each(|_| self.value(depth + 1));
                self.push("]");
            }
            _ => {
                self.push("{");
                for _ in 0..self.below(3) {
                    self.name();
                    self.push(":");
                    self.value(depth + 1);
                }
                self.push("}");
            }
        }
    }

    fn arguments(&mut self) {
        self.push("(");
        for _ in 0..=self.below(2) {
            self.name();
            self.push(":");
            self.value(0);
        }
        self.push(")");
    }

    fn directives(&mut self) {
        for _ in 0..self.below(2) {
            self.push("@");
            self.name();
            if self.below(2) == 0 {
                self.arguments();
            }
        }
    }

    fn selection_set(&mut self, depth: usize) {
        self.push("{");
        for _ in 0..=self.below(3) {
            match self.below(4) {
                0 => {
                    self.push("...");
                    self.name();
                    self.directives();
                }
                1 if depth < 3 => {
                    self.push("...");
                    if self.below(2) == 0 {
                        self.type_condition();
                    }
                    self.directives();
                    self.selection_set(depth + 1);
                }
                _ => self.field(depth),
            }
        }
        self.push("}");
    }

    fn field(&mut self, depth: usize) {
        if self.below(3) == 0 {
            self.name();
            self.push(":");
        }
        self.name();
        if self.below(2) == 0 {
            self.arguments();
        }
        self.directives();
        if depth < 3 && self.below(2) == 0 {
            self.selection_set(depth + 1);
        }
    }

    fn operation(&mut self) {
        if self.below(3) == 0 {
            return self.selection_set(0);
        }
        self.push_pick(&["query", "mutation", "subscription"]);
        self.name();
        if self.below(2) == 0 {
            self.push("(");
            self.push("$");
            self.name();
            self.push(":");
            // `[Int!]!`: the grammar's `type_` is atomic, so no ignored text inside.
            self.push("[");
            self.push_gap("Int", Gap::Glued);
            self.push_gap("!", Gap::Glued);
            self.push_gap("]", Gap::Glued);
            self.push_gap("!", Gap::Glued);
            self.push("=");
            self.push_pick(NUMBERS);
            self.push(")");
        }
        self.directives();
        self.selection_set(0);
    }

    fn document(&mut self) {
        self.operation();
        for i in 0..self.below(3) {
            self.push("fragment");
            // Fragment names are unique in a document.
            self.push(&format!("Fragment{i}"));
            self.type_condition();
            self.directives();
            self.selection_set(0);
        }
    }

    fn render(&mut self) -> String {
        let mut text = String::new();
        for (token, gap) in std::mem::take(&mut self.tokens) {
            let ignored = match gap {
                Gap::Glued => 0,
                _ => 1 + self.below(3),
            };
            for _ in 0..ignored {
                let from = if matches!(gap, Gap::Space) {
                    SPACES
                } else {
                    IGNORED
                };
                text.push_str(self.pick(from));
            }
            text.push_str(&token);
        }
        text
    }
}

proptest! {
    #[test]
    fn tokens_are_the_parsers_tokens(seed in 1..u64::MAX) {
        let mut generator = Gen { state: seed, tokens: Vec::new() };
        generator.document();
        let expected: Vec<String> = generator.tokens.iter().map(|(t, _)| t.clone()).collect();
        let doc = generator.render();
        if let Err(err) = parse_query(&doc) {
            prop_assert!(false, "the parser refused {doc:?}: {err}");
        }
        let found: Vec<&str> = Tokens::new(&doc).map(|range| &doc[range]).collect();
        prop_assert_eq!(found, expected, "{:?}", doc);
    }

    #[test]
    fn any_text_is_split_without_panicking(text in any::<String>()) {
        let mut end = 0;
        for range in Tokens::new(&text) {
            prop_assert!(range.start >= end && range.end > range.start);
            prop_assert!(text.get(range.clone()).is_some());
            end = range.end;
        }
    }
}
