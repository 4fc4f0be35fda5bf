//! Spreadsheet-safe cells: a cell that starts with `=`, `+`, `-`, `@`, tab or CR would be read as a
//! formula by Excel or LibreOffice (CSV injection), so it is written with a leading `'`.

use std::borrow::Cow;

/// The cell as written to a result or rejects file.
pub fn inert(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::inert;

    #[test]
    fn formulas_are_made_inert() {
        assert_eq!(inert("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(inert("+91 99999"), "'+91 99999");
        assert_eq!(inert("-5"), "'-5");
        assert_eq!(inert("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(inert("\tx"), "'\tx");
        assert_eq!(inert("\rx"), "'\rx");
        assert_eq!(inert("Ravi"), "Ravi");
        assert_eq!(inert(""), "");
        assert_eq!(inert("1500.00"), "1500.00");
    }
}
