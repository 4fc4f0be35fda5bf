//! Money: the one type every amount in payrun passes through.
//!
//! An [`Amount`] is a non-negative number of rupees with at most two decimal places (paise). It is
//! held as whole paise in an integer, so adding a million of them is exact and cheap; decimal text
//! in other shapes (the gateway's `"10.0000000000"`) is read exactly with `rust_decimal`. Nothing in
//! payrun turns an amount into a float: not the parser, not the wire format, not the totals. The parser here is the single implementation of the `BAD_AMOUNT` rule
//! of SPEC section 2, so the validator, the sandbox and the report all agree on what a valid amount is.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The largest amount one row may carry, in paise: ₹1,00,00,00,000 (100 crore).
pub const MAX_ROW_PAISE: u128 = 100_000_000_000;

/// An amount of Indian rupees, exact to the paisa: whole paise, never negative. Two equal amounts
/// are equal whatever text they came from (`1,500` and `1500.00` are the same `Amount`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Amount(i64);

/// Why a text is not an amount. Each variant is one sentence of the operator-facing message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error(
        "'{0}' is not an amount: use digits with an optional '.' and 1 or 2 decimals, e.g. 1500, 1,500.50 or 1,50,000"
    )]
    Syntax(String),
    #[error("'{0}' has digit grouping that is neither Western (1,234,567) nor Indian (12,34,567)")]
    Grouping(String),
    #[error("'{0}' has more than 2 decimal places")]
    TooPrecise(String),
    #[error("amount must be above zero")]
    Zero,
    #[error("'{0}' is above the limit of ₹1,00,00,00,000 (100 crore) per row")]
    TooLarge(String),
}

impl Amount {
    /// Zero rupees: the start of a total.
    pub const ZERO: Amount = Amount(0);

    /// Builds an amount from whole paise. Used by generators and tests; exact.
    pub fn from_paise(paise: i64) -> Amount {
        Amount(paise.saturating_abs())
    }

    /// Builds an amount from whole rupees.
    pub fn from_rupees(rupees: i64) -> Amount {
        Amount::from_paise(rupees.saturating_abs().saturating_mul(100))
    }

    /// Whole paise.
    pub fn paise(&self) -> i128 {
        i128::from(self.0)
    }

    /// The form the gateway receives: plain digits, a dot and two decimals (`150000.00`). The API
    /// document says "integer or doubled value"; two fixed decimals are both and never lose a paisa.
    pub fn to_wire(&self) -> String {
        self.to_string()
    }

    /// Indian grouping for people: `1,50,000.00`.
    pub fn to_indian(&self) -> String {
        let s = self.to_string();
        let (int, frac) = s.split_once('.').unwrap_or((s.as_str(), "00"));
        let bytes = int.as_bytes();
        let mut out = String::with_capacity(s.len() + 8);
        let n = bytes.len();
        for (i, c) in int.chars().enumerate() {
            let left = n - i;
            if i > 0 && (left == 3 || (left > 3 && (left - 3) % 2 == 0)) {
                out.push(',');
            }
            out.push(c);
        }
        out.push('.');
        out.push_str(frac);
        out
    }

    /// Parses a cell of the input file by the `BAD_AMOUNT` rule (SPEC section 2): an optional prefix
    /// `₹`, `Rs`, `Rs.` or `INR` (any case, optional spaces after it); digits with no grouping or
    /// correct Western or Indian grouping; an optional `.` followed by 1 or 2 digits; above zero and at
    /// most 100 crore. The text must already be trimmed.
    pub fn parse_cell(text: &str) -> Result<Amount, AmountError> {
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let body = strip_currency_prefix(text);
        let syntax = || AmountError::Syntax(text.to_string());
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (body, None),
        };
        if int_part.is_empty() {
            return Err(syntax());
        }
        if let Some(f) = frac_part {
            if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(syntax());
            }
            if f.len() > 2 {
                return Err(AmountError::TooPrecise(text.to_string()));
            }
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit() || b == b',') {
            return Err(syntax());
        }
        if int_part.contains(',') && !grouping_ok(int_part) {
            return Err(AmountError::Grouping(text.to_string()));
        }
        // Build the mantissa in paise with checked arithmetic: at most 100 crore passes, anything
        // longer is too large (or absurd), never an overflow.
        let mut paise: u128 = 0;
        let mut digits = 0usize;
        for b in int_part.bytes().filter(|b| *b != b',') {
            digits += 1;
            if digits > 30 {
                return Err(AmountError::TooLarge(text.to_string()));
            }
            paise = paise * 10 + u128::from(b - b'0');
        }
        paise *= 100;
        if let Some(f) = frac_part {
            let mut frac: u128 = 0;
            for b in f.bytes() {
                frac = frac * 10 + u128::from(b - b'0');
            }
            if f.len() == 1 {
                frac *= 10;
            }
            paise += frac;
        }
        if paise == 0 {
            return Err(AmountError::Zero);
        }
        if paise > MAX_ROW_PAISE {
            return Err(AmountError::TooLarge(text.to_string()));
        }
        // paise <= 10^11 fits an i64 and a Decimal mantissa.
        Ok(Amount::from_paise(paise as i64))
    }
}

/// Removes one currency prefix (`₹`, `Rs.`, `Rs`, `INR`, any case) and the spaces after it.
fn strip_currency_prefix(text: &str) -> &str {
    let b = text.as_bytes();
    let rest = if let Some(r) = text.strip_prefix('₹') {
        r
    } else if b.len() >= 3 && b[..3].eq_ignore_ascii_case(b"inr") {
        &text[3..]
    } else if b.len() >= 3 && b[..3].eq_ignore_ascii_case(b"rs.") {
        &text[3..]
    } else if b.len() >= 2 && b[..2].eq_ignore_ascii_case(b"rs") {
        &text[2..]
    } else {
        return text;
    };
    rest.trim_start_matches([' ', '\u{a0}'])
}

/// Whether comma-grouped integer digits follow Western (`1,234,567`) or Indian (`12,34,567`) grouping.
fn grouping_ok(int_part: &str) -> bool {
    let groups: Vec<&str> = int_part.split(',').collect();
    let (first, rest) = match groups.split_first() {
        Some(x) => x,
        None => return false,
    };
    let (last, middle) = match rest.split_last() {
        Some(x) => x,
        None => return false,
    };
    if first.is_empty() || last.len() != 3 {
        return false;
    }
    let western = first.len() <= 3 && middle.iter().all(|g| g.len() == 3);
    let indian = first.len() <= 2 && middle.iter().all(|g| g.len() == 2);
    western || indian
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    /// Parses the canonical form that payrun itself writes (`1500.00`, also `0.00`): see [`parse_plain`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_plain(s).ok_or_else(|| AmountError::Syntax(s.to_string()))
    }
}

impl TryFrom<String> for Amount {
    type Error = AmountError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Amount> for String {
    fn from(a: Amount) -> String {
        a.to_string()
    }
}

impl Add for Amount {
    type Output = Amount;
    fn add(self, rhs: Amount) -> Amount {
        Amount(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Amount {
    fn add_assign(&mut self, rhs: Amount) {
        *self = *self + rhs;
    }
}

impl Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount::ZERO, |a, b| a + b)
    }
}

/// A count of rows and their total amount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub count: u64,
    pub amount: Amount,
}

impl Tally {
    pub fn add(&mut self, amount: Amount) {
        self.count += 1;
        self.amount += amount;
    }
}

impl AddAssign for Tally {
    fn add_assign(&mut self, rhs: Tally) {
        self.count += rhs.count;
        self.amount += rhs.amount;
    }
}

/// Parses a decimal amount that a gateway or a journal wrote (`"1500"`, `"1500.5"`, `1500.00`):
/// plain digits and an optional fraction of at most two digits. Returns `None` for anything else.
pub fn parse_plain(text: &str) -> Option<Amount> {
    let t = text.trim();
    if t.is_empty() || t.contains(',') || t.starts_with(['+', '-']) {
        return None;
    }
    let d = Decimal::from_str(t).ok()?;
    let mut d = d.normalize();
    if d.is_sign_negative() || d.scale() > 2 {
        return None;
    }
    d.rescale(2);
    Some(Amount(i64::try_from(d.mantissa()).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        Amount::parse_cell(s).map(|a| a.to_string()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn accepts_the_spec_forms() {
        assert_eq!(ok("1500"), "1500.00");
        assert_eq!(ok("1500.5"), "1500.50");
        assert_eq!(ok("1,500.00"), "1500.00");
        assert_eq!(ok("12,34,567"), "1234567.00");
        assert_eq!(ok("1,234,567.89"), "1234567.89");
        assert_eq!(ok("₹1,50,000"), "150000.00");
        assert_eq!(ok("₹ 500"), "500.00");
        assert_eq!(ok("Rs.500"), "500.00");
        assert_eq!(ok("rs 500"), "500.00");
        assert_eq!(ok("RS. 500.25"), "500.25");
        assert_eq!(ok("INR 1,00,00,00,000"), "1000000000.00");
        assert_eq!(ok("inr42"), "42.00");
        assert_eq!(ok("0.01"), "0.01");
        assert_eq!(ok("1,000"), "1000.00");
    }

    #[test]
    fn rejects_the_spec_counterexamples() {
        for bad in [
            "10.",
            ".5",
            "+500",
            "100.000",
            "1e5",
            "1.234,50",
            "-100",
            "0",
            "0.00",
            "",
            "1,00,00,00,001",
            "1000000000.01",
            "12,3456",
            "1,2345",
            "1,,000",
            ",100",
            "100,",
            "₹",
            "Rs",
            "1 000",
            "1_000",
            "१००",
            "5 INR",
            "1500/-",
            "₹-5",
            "12,34,5678",
            "123,45,678",
        ] {
            assert!(Amount::parse_cell(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn equal_values_are_equal_amounts() {
        assert_eq!(Amount::parse_cell("1,500.00"), Amount::parse_cell("1500"));
        assert_eq!(Amount::parse_cell("1500.0").map(|a| a.paise()), Ok(150000));
    }

    #[test]
    fn indian_display() {
        assert_eq!(Amount::from_rupees(150000).to_indian(), "1,50,000.00");
        assert_eq!(Amount::from_rupees(1000000000).to_indian(), "1,00,00,00,000.00");
        assert_eq!(Amount::from_paise(99).to_indian(), "0.99");
        assert_eq!(Amount::from_rupees(999).to_indian(), "999.00");
        assert_eq!(Amount::from_rupees(1000).to_indian(), "1,000.00");
    }

    #[test]
    fn plain_parse_for_wire_and_journal() {
        assert_eq!(parse_plain("1500").map(|a| a.to_string()).as_deref(), Some("1500.00"));
        assert_eq!(parse_plain("10.0000000000").map(|a| a.to_string()).as_deref(), Some("10.00"));
        assert_eq!(parse_plain("10.001"), None);
        assert_eq!(parse_plain("-1"), None);
        assert_eq!(parse_plain("abc"), None);
    }
}
