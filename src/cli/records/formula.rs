//! Spreadsheet formula injection (OWASP "CSV injection"): spreadsheets run a cell starting
//! with `=`, `+`, `-`, `@`, tab or CR as a formula. The export writes a metadata value that
//! starts so with a `'` in front, as OWASP advises and as spreadsheets themselves mark text,
//! and the import removes it again, so an export imports back to the same contacts. The other
//! columns are safe as they are: E.164 (`+` and digits, at most a number to a spreadsheet),
//! an ISO country code, an RFC 3339 time; the header's metadata columns start `metadata.`.

use std::borrow::Cow;

/// What makes a spreadsheet read a cell as a formula, as OWASP lists it.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// True when `text` starts with `'` followed by a formula start or another `'`: the form
/// [`guard`] writes, and the only one [`unguard`] reads back.
fn is_guarded(text: &str) -> bool {
    text.strip_prefix('\'')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c == '\'' || FORMULA_START.contains(&c))
}

/// A metadata value as a CSV cell a spreadsheet shows as text: `=1+1` becomes `'=1+1`. A value
/// that would read as guarded (`'=x`) gets a `'` too, so [`unguard`] is its exact inverse.
pub(super) fn guard(value: &str) -> Cow<'_, str> {
    if value.starts_with(FORMULA_START) || is_guarded(value) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// A metadata cell as the value: the `'` [`guard`] added is removed; a cell such as `'abc`,
/// which no export writes, is kept as it is.
pub(super) fn unguard(cell: &str) -> &str {
    if is_guarded(cell) { &cell[1..] } else { cell }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_metadata_cells_never_start_a_formula_and_read_back_unchanged() {
        for value in [
            "=HYPERLINK(\"http://x.test\",\"y\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'=x",
            "''",
            "'",
            "'abc",
            "plain",
            "",
        ] {
            let cell = guard(value);
            assert!(!cell.starts_with(FORMULA_START), "{value:?} -> {cell:?}");
            assert_eq!(unguard(&cell), value, "{value:?} -> {cell:?}");
        }
        assert_eq!(guard("=1+1"), "'=1+1");
        assert_eq!(unguard("'abc"), "'abc");
    }
}
