//! The rules of SPEC section 2, applied to one record at a time.
//!
//! [`Validator::check`] reports every problem of a row (never stopping at the first) and returns
//! the normalised row when it has no error. Its memory is what duplicate detection needs: one
//! 96-bit key and a line number per row (16 bytes; a false match between two different rows has
//! odds of about 1 in 10^17 for a million-row file), nothing else grows with the file.
//!
//! IFSC codes are checked against the `ifsc` crate's bundled directory (Razorpay's public-domain
//! data); a well-formed code that no branch has is `UNKNOWN_IFSC`.
//!
//! A workbook's cells arrive as text like a CSV file's, with their kind ([`CellKind`]): a number in
//! an account cell has lost its leading zeros (`ACCOUNT_AS_NUMBER`, a warning) or its last digits
//! (`SPREADSHEET_MANGLED`), and a date is never an amount or an account. Remarks are sent in ASCII:
//! other characters are transliterated (`für` → `fur`, `–` → `-`, `₹` → `Rs`) with a
//! `REMARKS_CHANGED` warning showing what will be sent; the file's own cell is never changed.

use std::borrow::Cow;

use super::columns::{Columns, Field};
use super::reader::{CellKind, Record, trim};
use super::{Code, Mode, Problem, RowView, Severity};
use crate::money::Amount;

/// IMPS allows at most ₹5,00,000 per payout.
pub const IMPS_MAX_PAISE: i128 = 5_00_000_00;
/// RTGS is for ₹2,00,000 and above.
pub const RTGS_MIN_PAISE: i128 = 2_00_000_00;

/// Switches of SPEC section 2: how a file is read and checked.
#[derive(Clone, Debug, Default)]
pub struct RuleOptions {
    /// The workbook sheet to read (`--sheet`); `None` reads the first visible one. Naming a sheet
    /// for a CSV file is an error.
    pub sheet: Option<String>,
    /// Derive a missing mode: RTGS from ₹2,00,000, else IMPS.
    pub mode_auto: bool,
    /// Mode for rows that have none (from `payrun.toml`).
    pub default_mode: Option<Mode>,
    /// Same account, IFSC and amount twice is a warning instead of an error.
    pub allow_duplicates: bool,
    /// An IFSC missing from the directory is a warning instead of an error.
    pub allow_unknown_ifsc: bool,
}

/// The bundled directory's version, for messages and the docs.
pub fn directory_version() -> String {
    let d = ifsc::dataset();
    format!("{} (RBI update {})", ifsc::DATA_VERSION, d.rbi_update_date())
}

/// A 96-bit key of some bytes: a wyhash-style folded-multiply hash, 128 bits wide, of which 96
/// are kept. Not cryptographic: it only has to spread an operator's own file evenly.
pub type Key = [u32; 3];

/// Which duplicate rule a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// Account, IFSC and amount (`DUPLICATE_ROW`).
    Row = 0,
    /// A reference, ignoring case (`BAD_REF`).
    Reference = 1,
    /// Account and IFSC; the value kept is a fingerprint of the payee's id (or name), not a line
    /// (`SHARED_ACCOUNT`).
    Payee = 2,
}

/// Where the validator remembers the first line of every row key and reference it has seen: the
/// only memory that grows with the file. `validate` keeps it in memory ([`MemoryIndex`], fast);
/// `run` keeps it in a scratch file on disk so memory stays flat at a million rows.
pub trait SeenIndex {
    /// The line `key` was first seen on; when new, records `line` and returns `None`.
    fn first_or_insert(&mut self, kind: KeyKind, key: Key, line: u32) -> Option<u32>;

    /// Why the index stopped working, if it did (then duplicates can no longer be told apart and
    /// the file must not be used).
    fn failure(&self) -> Option<String> {
        None
    }
}

/// The in-memory [`SeenIndex`].
pub struct MemoryIndex {
    rows: Seen,
    refs: Seen,
    payees: Seen,
}

impl MemoryIndex {
    /// Sized for about `rows` rows (`refs`: whether the file has a reference column).
    pub fn with_capacity(rows: usize, refs: bool) -> MemoryIndex {
        MemoryIndex {
            rows: Seen::with_capacity(rows),
            refs: Seen::with_capacity(if refs { rows } else { 0 }),
            payees: Seen::with_capacity(rows),
        }
    }
}

impl SeenIndex for MemoryIndex {
    fn first_or_insert(&mut self, kind: KeyKind, key: Key, line: u32) -> Option<u32> {
        match kind {
            KeyKind::Row => self.rows.first_or_insert(key, line),
            KeyKind::Reference => self.refs.first_or_insert(key, line),
            KeyKind::Payee => self.payees.first_or_insert(key, line),
        }
    }
}

#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a).wrapping_mul(u128::from(b));
    (r as u64) ^ ((r >> 64) as u64)
}

fn key(tag: u64, parts: &[&[u8]]) -> Key {
    const P: [u64; 4] = [0xa076_1d64_78bd_642f, 0xe703_7ed1_a0b4_28db, 0x8ebc_6af0_9c88_c6e3, 0x5899_65cc_7537_4cc3];
    let (mut h1, mut h2) = (tag ^ P[0], tag.rotate_left(32) ^ P[1]);
    for part in parts {
        let mut chunks = part.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h1 = mum(h1 ^ w, P[2]);
            h2 = mum(h2 ^ w.rotate_left(29), P[3]);
        }
        let mut tail = [0u8; 8];
        let rem = chunks.remainder();
        tail[..rem.len()].copy_from_slice(rem);
        let w = u64::from_le_bytes(tail) ^ ((part.len() as u64) << 56);
        h1 = mum(h1 ^ w, P[2]);
        h2 = mum(h2 ^ w.rotate_left(29), P[3]);
    }
    let a = mum(h1 ^ P[1], h2 ^ P[0]);
    let b = mum(h2 ^ P[2], h1 ^ P[3]);
    [a as u32, (a >> 32) as u32, b as u32]
}

/// The first line each key was seen on: an open-addressing table with linear probing whose slots
/// hold the key itself, so a lookup touches one cache line (a general hash map touches two). The
/// keys are already hashes, so their first word picks the slot. Line 0 marks an empty slot.
struct Seen {
    slots: Vec<[u32; 4]>,
    len: usize,
}

impl Seen {
    fn with_capacity(n: usize) -> Seen {
        let cap = (n.max(8) * 10 / 7 + 1).next_power_of_two();
        Seen { slots: Seen::table(cap), len: 0 }
    }

    /// A zeroed table, written once front to back: the pages are faulted in one sequential pass
    /// instead of one (or two: read, then write) random faults per page during the scan.
    fn table(cap: usize) -> Vec<[u32; 4]> {
        let mut v = Vec::with_capacity(cap);
        v.resize(cap, [0u32; 4]);
        v
    }

    /// The line `k` was first seen on; when new, records it on `line` and returns `None`.
    fn first_or_insert(&mut self, k: Key, line: u32) -> Option<u32> {
        if (self.len + 1) * 10 > self.slots.len() * 7 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = (k[0] as usize) & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot[3] == 0 {
                *slot = [k[0], k[1], k[2], line.max(1)];
                self.len += 1;
                return None;
            }
            if slot[..3] == k {
                return Some(slot[3]);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        self.slots = Seen::table((old.len() * 2).max(16));
        self.len = 0;
        for s in old.into_iter().filter(|s| s[3] != 0) {
            self.first_or_insert([s[0], s[1], s[2]], s[3]);
        }
    }
}

/// Applies the rules to the rows of one file.
pub struct Validator {
    opts: RuleOptions,
    columns: Columns,
    seen: Box<dyn SeenIndex>,
    /// Directory answers for recently seen codes (a file has few distinct IFSCs): direct-mapped.
    ifsc_cache: Vec<Option<([u8; 11], Option<ifsc::Branch>)>>,
}

const IFSC_CACHE: usize = 1024;

/// Outcome of the IFSC rules for one code.
enum IfscCheck {
    Bad,
    Unknown,
    Known(ifsc::Branch),
}

fn well_formed_ifsc(b: &[u8]) -> bool {
    b.len() == 11
        && b[..4].iter().all(u8::is_ascii_uppercase)
        && b[4] == b'0'
        && b[5..].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn check_ifsc(code: &str) -> IfscCheck {
    if !well_formed_ifsc(code.as_bytes()) {
        return IfscCheck::Bad;
    }
    match ifsc::lookup_str(code) {
        Ok(Some(branch)) => IfscCheck::Known(branch),
        _ => IfscCheck::Unknown,
    }
}

/// Whether an account cell looks rewritten by a spreadsheet: `3.96285E+10`, `1.23E+016`,
/// `39628544321.0`, `39,628,544,321`.
pub fn spreadsheet_mangled(v: &str) -> bool {
    // The common case, plain digits, needs no more work.
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let s: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    let s = s.as_str();
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    // Exponent form.
    if let Some((mant, exp)) = s.split_once(['e', 'E']) {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        let mant_ok = match mant.split_once(['.', ',']) {
            Some((i, f)) => digits(i) && (f.is_empty() || digits(f)),
            None => digits(mant),
        };
        return mant_ok && digits(exp);
    }
    // A decimal point (or comma) with only zeros after it.
    if let Some((i, f)) = s.rsplit_once('.') {
        if digits(&i.replace(',', "")) && !f.is_empty() && f.bytes().all(|b| b == b'0') {
            return true;
        }
    }
    // Digit grouping.
    s.contains(',') && s.split(',').all(digits)
}

/// The account number's digits, or why not.
fn check_account(v: &str) -> Result<Cow<'_, str>, (Code, String)> {
    if (9..=18).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Cow::Borrowed(v));
    }
    if spreadsheet_mangled(v) {
        return Err((
            Code::SpreadsheetMangled,
            format!(
                "'{v}' looks rewritten by a spreadsheet (scientific notation, a decimal point or thousands separators), so the real number may be lost: format the column as Text, re-enter the account numbers and export again"
            ),
        ));
    }
    let digits: String = v.chars().filter(|c| *c != ' ' && *c != '\u{a0}').collect();
    if (9..=18).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Cow::Owned(digits))
    } else {
        Err((Code::BadAccount, format!("'{v}' is not an account number: it must be 9 to 18 digits{}", account_hint(v))))
    }
}

/// Why an account cell that is not 9 to 18 digits may be so, for the shapes spreadsheets and
/// exports leave (the cell is refused all the same: SPEC removes spaces only).
fn account_hint(v: &str) -> &'static str {
    let inner = v.trim_start_matches('\'');
    let digits_and = |seps: &[char]| {
        v.chars().any(|c| seps.contains(&c))
            && v.chars().all(|c| c.is_ascii_digit() || seps.contains(&c) || c == ' ')
            && v.chars().filter(char::is_ascii_digit).count() >= 9
    };
    if v.starts_with('\'') && !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_digit()) {
        " (a leading apostrophe is Excel's mark for text: the cell holds it as a character; remove it and format the column as Text)"
    } else if v.starts_with("=\"") || v.starts_with("='") {
        " (it is written as a spreadsheet formula, =\"...\": write the digits alone and format the column as Text)"
    } else if digits_and(&['-', '.', '/']) {
        " (write the digits alone, without '-', '.' or '/' between them)"
    } else if v.chars().any(|c| c.is_numeric() && !c.is_ascii_digit()) {
        " (it has digits other than 0-9, from another script or a full-width font: type them as 0-9)"
    } else {
        ""
    }
}

/// A character bank rails carry in a name.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || " .,'&-()/".contains(c)
}

/// Text in ASCII, as bank rails carry it: `für` → `fur`, `–` → `-`, `₹` → `Rs`, `€` → `EUR`.
pub fn to_ascii(v: &str) -> String {
    if v.is_ascii() {
        return v.to_string();
    }
    deunicode::deunicode(v).trim().to_string()
}

/// The plain-ASCII spelling of a name written with accented Latin letters (`Jürgen` → `Jurgen`),
/// when that spelling is itself a valid name. None for other scripts: their spelling in Latin
/// letters is the account holder's to say, not a transliteration table's.
fn ascii_spelling(v: &str) -> Option<String> {
    // Accented Latin letters, and typographic punctuation a spreadsheet's autocorrect puts in
    // (`O’Brien`, `Shah – Sons`, a no-break space): never the letters of another script.
    let latin = |c: char| {
        c.is_ascii() || !c.is_alphabetic() || (c.is_alphabetic() && matches!(c as u32, 0xC0..=0x24F | 0x1E00..=0x1EFF))
    };
    if !v.chars().all(latin) {
        return None;
    }
    let s = to_ascii(v);
    (s != v && !s.is_empty() && s.chars().all(name_char)).then_some(s)
}

/// A character as a message shows it: visible ones quoted (`'ü'`), white space other than the
/// space and invisible ones by name and code point, so the operator can find them.
fn shown_char(c: char) -> String {
    match c {
        '\t' => "a tab".to_string(),
        '\n' | '\r' => format!("a line break (U+{:04X}) inside the cell", c as u32),
        '\u{a0}' => "a no-break space (U+00A0)".to_string(),
        c if c.is_whitespace() => format!("a special space (U+{:04X})", c as u32),
        c if c.is_control() || super::reader::invisible(c) => {
            format!("an invisible character (U+{:04X})", c as u32)
        }
        c => format!("'{c}'"),
    }
}

/// Whether an amount that failed its rule is written with a decimal comma (`1500,00`,
/// `1.500,00`: a German or French spreadsheet's way).
fn decimal_comma(v: &str) -> bool {
    let Some((int, frac)) = v.rsplit_once(',') else { return false };
    let int_ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && int.split('.').skip(1).all(|g| g.len() == 3);
    int_ok && (1..=2).contains(&frac.len()) && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Why an upper-cased IFSC cell is not of the form, for the common slips (refused all the same).
fn ifsc_hint(v: &str) -> &'static str {
    let b = v.as_bytes();
    if v.contains(|c: char| c.is_whitespace() || c == '-') {
        let squeezed: String = v.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        if well_formed_ifsc(squeezed.as_bytes()) {
            return " (write it without spaces or dashes)";
        }
    }
    if b.len() == 11 && b[4] == b'O' {
        return " (the fifth character is the digit zero, not the letter O)";
    }
    ""
}

/// For a well-formed IFSC no branch has: the known branch it names when a letter O in its branch
/// code is read as the digit zero (`HDFC000O007` → `HDFC0000007`), the commonest slip in typing
/// one. Empty when no such branch exists.
fn unknown_ifsc_hint(upper: &str) -> String {
    let b = upper.as_bytes();
    let os: Vec<usize> = (5..b.len()).filter(|&i| b[i] == b'O').collect();
    if os.is_empty() {
        return String::new();
    }
    // Every choice of which O's are zeros (at most 63: the branch code has six characters), all of
    // them first.
    for mask in (1u32..(1 << os.len())).rev() {
        let mut c = b.to_vec();
        for (k, &i) in os.iter().enumerate() {
            if mask & (1 << k) != 0 {
                c[i] = b'0';
            }
        }
        let candidate = String::from_utf8_lossy(&c).into_owned();
        if matches!(check_ifsc(&candidate), IfscCheck::Known(_)) {
            return format!("perhaps {candidate}, a known branch: the digit zero, not the letter O; ");
        }
    }
    String::new()
}

/// Why an amount cell is not of SPEC's form, for the shapes Indian accounting exports write (the
/// cell is refused all the same).
fn amount_hint(v: &str) -> &'static str {
    let lower = v.to_ascii_lowercase();
    let lower = lower.trim_end();
    if lower.starts_with('?') {
        " (a '?' where the ₹ sign was: the file was saved in a code page without ₹, as Excel's plain 'CSV' does; save it as 'CSV UTF-8', or format the column as Number)"
    } else if lower.ends_with("/-") {
        " (the '/-' after rupees is not part of the amount: write it without it)"
    } else if lower.starts_with('-') || (lower.starts_with('(') && lower.ends_with(')')) {
        " (a negative amount: a payout is always above zero)"
    } else if ["cr", "dr", "cr.", "dr."].iter().any(|s| lower.ends_with(s)) {
        " (write the amount without Cr or Dr)"
    } else if ["inr", "rs", "rs.", "/-", "₹"].iter().any(|s| lower.ends_with(s)) {
        " (the currency goes before the amount, or is left out)"
    } else if v.contains(['$', '€', '£', '＄']) || lower.starts_with("usd") || lower.starts_with("eur") {
        " (payouts are in rupees: the only currency marks are ₹, Rs, Rs. and INR)"
    } else if v.chars().any(|c| c.is_numeric() && !c.is_ascii_digit()) {
        " (it has digits other than 0-9, from another script or a full-width font: type them as 0-9)"
    } else {
        ""
    }
}

/// Checks a beneficiary name: at most 100 characters of ASCII letters, digits, space and `. , ' & - ( ) /`.
fn check_name(v: &str) -> Result<(), String> {
    let n = if v.len() <= 100 { 0 } else { v.chars().count() };
    if n > 100 {
        return Err(format!("name is {n} characters long; banks accept at most 100"));
    }
    if let Some(bad) = v.chars().find(|c| !name_char(*c)) {
        const ALLOWED: &str = "ASCII letters (A-Z, a-z), digits, space and . , ' & - ( ) / only";
        let shown = shown_char(bad);
        return Err(if bad.is_ascii() {
            format!("name contains {shown}: use {ALLOWED}, and write the name as the bank account holds it")
        } else if let Some(spelling) = ascii_spelling(v) {
            format!(
                "name contains {shown}: bank rails carry {ALLOWED}; write the name as the bank account holds it, perhaps '{spelling}'"
            )
        } else {
            format!(
                "name contains {shown}: bank rails carry {ALLOWED}; write the name in English letters as the bank account holds it"
            )
        });
    }
    Ok(())
}

/// Checks a reference's form: 1-35 of `[A-Za-z0-9_-]`.
pub fn reference_ok(v: &str) -> bool {
    (1..=35).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Validator {
    pub fn new(columns: Columns, opts: RuleOptions) -> Validator {
        let refs = columns.of(Field::Reference).is_some();
        Validator::with_index(columns, opts, Box::new(MemoryIndex::with_capacity(0, refs)))
    }

    /// A validator remembering duplicates in `seen`.
    pub fn with_index(columns: Columns, opts: RuleOptions, seen: Box<dyn SeenIndex>) -> Validator {
        Validator { opts, columns, seen, ifsc_cache: vec![None; IFSC_CACHE] }
    }

    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// See [`SeenIndex::failure`].
    pub fn index_failure(&self) -> Option<String> {
        self.seen.failure()
    }

    fn field<'r>(&self, rec: &'r Record, f: Field) -> &'r str {
        match self.columns.of(f) {
            Some(i) => trim(rec.get(i)),
            None => "",
        }
    }

    /// What a workbook cell of field `f` held ([`CellKind::Text`] for CSV).
    fn kind(&self, rec: &Record, f: Field) -> CellKind {
        self.columns.of(f).map_or(CellKind::Text, |i| rec.kind(i))
    }
}

/// [`check_ifsc`] through a direct-mapped cache.
fn lookup_ifsc(cache: &mut [Option<([u8; 11], Option<ifsc::Branch>)>], code: &str) -> IfscCheck {
    {
        let b = code.as_bytes();
        if !well_formed_ifsc(b) {
            return IfscCheck::Bad;
        }
        let mut k = [0u8; 11];
        k.copy_from_slice(b);
        let slot = (key(0, &[b])[0] as usize) % cache.len().max(1);
        if let Some((cached, answer)) = cache[slot] {
            if cached == k {
                return answer.map_or(IfscCheck::Unknown, IfscCheck::Known);
            }
        }
        let answer = check_ifsc(code);
        let stored = match answer {
            IfscCheck::Known(b) => Some(b),
            _ => None,
        };
        cache[slot] = Some((k, stored));
        answer
    }
}

impl Validator {
    /// Checks one record; pushes its problems (errors and warnings) and returns the row when it has
    /// no error. Rows must be given in file order (duplicates point back to earlier lines).
    pub fn check<'r>(&mut self, rec: &'r Record, problems: &mut Vec<Problem>) -> Option<RowView<'r>> {
        let line = rec.line;
        let width = self.columns.header.len();
        if rec.len() != width {
            problems.push(Problem {
                line,
                column: String::new(),
                code: Code::BadRow,
                severity: Severity::Error,
                message: format!(
                    "row has {} field{}, the header has {width}: check for an unquoted delimiter or a missing cell",
                    rec.len(),
                    if rec.len() == 1 { "" } else { "s" }
                ),
            });
            return None;
        }
        if rec.hidden {
            problems.push(Problem {
                line,
                column: String::new(),
                code: Code::HiddenRow,
                severity: Severity::Warning,
                message: "the row is hidden in the sheet (hidden by hand, or filtered out by a filter): it is read and paid like the others; unhide it to check it, or delete it if it is not to be paid".to_string(),
            });
        }
        let before = problems.len();
        let mut push = |field: Field, code: Code, severity: Severity, mut message: String, cols: &Columns| {
            // A workbook cell that is an error or a logical value says so: its text alone puzzles.
            if let (Severity::Error, Some(i)) = (severity, cols.of(field)) {
                match rec.kind(i) {
                    CellKind::Error => message.push_str(&format!(
                        " (the cell holds the spreadsheet error {}: fix the formula or value behind it)",
                        trim(rec.get(i))
                    )),
                    CellKind::Bool => message.push_str(" (the cell holds a TRUE/FALSE value, not text)"),
                    CellKind::Unsaved => message.push_str(
                        " (the cell holds a formula whose value was never saved, as when a program wrote the workbook: Excel shows it computed, payrun reads saved values only; open the workbook in Excel and save it)",
                    ),
                    _ => {}
                }
            }
            // A control character (a stray NUL, a form feed) does not show on a screen, and must not
            // reach one raw: named by its code point, like the name rule's invisible characters.
            if message.contains(|c: char| c.is_control()) {
                let mut named: Vec<String> = Vec::new();
                for c in message.chars().filter(|c| c.is_control()) {
                    let point = format!("U+{:04X}", c as u32);
                    if !named.contains(&point) {
                        named.push(point);
                    }
                }
                message = message
                    .chars()
                    .map(|c| if c.is_control() { format!("<U+{:04X}>", c as u32) } else { c.to_string() })
                    .collect();
                message.push_str(&format!(
                    " (the cell holds {} that {} not show on screen, {}: retype the cell)",
                    if named.len() == 1 { "a control character" } else { "control characters" },
                    if named.len() == 1 { "does" } else { "do" },
                    named.join(", ")
                ));
            }
            problems.push(Problem { line, column: cols.heading(field), code, severity, message });
        };
        let cols = &self.columns;
        let missing = |f: Field| format!("{} is empty", f.label());

        let name = self.field(rec, Field::Name);
        if name.is_empty() {
            push(Field::Name, Code::MissingField, Severity::Error, missing(Field::Name), cols);
        } else if let Err(m) = check_name(name) {
            push(Field::Name, Code::BadName, Severity::Error, m, cols);
        }

        let account_cell = self.field(rec, Field::Account);
        let account_kind = self.kind(rec, Field::Account);
        let account = if account_cell.is_empty() {
            push(Field::Account, Code::MissingField, Severity::Error, missing(Field::Account), cols);
            None
        } else if account_kind == CellKind::Number
            && account_cell.len() >= 16
            && account_cell.bytes().all(|b| b.is_ascii_digit())
        {
            push(
                Field::Account,
                Code::SpreadsheetMangled,
                Severity::Error,
                format!(
                    "'{account_cell}' is a number cell of {} digits: a spreadsheet keeps only 15 significant digits, so the last ones are likely lost: format the column as Text, re-enter the account numbers and save again",
                    account_cell.len()
                ),
                cols,
            );
            None
        } else if account_kind == CellKind::Date {
            push(
                Field::Account,
                Code::BadAccount,
                Severity::Error,
                format!(
                    "the cell is a date ({account_cell}), not an account number: format the column as Text and re-enter it"
                ),
                cols,
            );
            None
        } else {
            match check_account(account_cell) {
                Ok(a) => {
                    if account_kind == CellKind::Number {
                        push(
                            Field::Account,
                            Code::AccountAsNumber,
                            Severity::Warning,
                            format!(
                                "'{a}' is a number cell, not text: a number drops leading zeros (0012345678 becomes 12345678), so check it against the bank details, and format the column as Text"
                            ),
                            cols,
                        );
                    }
                    Some(a)
                }
                Err((code, mut m)) => {
                    if account_kind == CellKind::Number {
                        m.push_str(" (it is a number cell: format the column as Text so no digit is lost)");
                    }
                    push(Field::Account, code, Severity::Error, m, cols);
                    None
                }
            }
        };

        let ifsc_cell = self.field(rec, Field::Ifsc);
        let mut branch = None;
        let ifsc = if ifsc_cell.is_empty() {
            push(Field::Ifsc, Code::MissingField, Severity::Error, missing(Field::Ifsc), cols);
            None
        } else {
            let upper: Cow<'_, str> = if ifsc_cell.bytes().any(|b| b.is_ascii_lowercase()) {
                Cow::Owned(ifsc_cell.to_ascii_uppercase())
            } else {
                Cow::Borrowed(ifsc_cell)
            };
            match lookup_ifsc(&mut self.ifsc_cache, &upper) {
                IfscCheck::Bad => {
                    push(
                        Field::Ifsc,
                        Code::BadIfsc,
                        Severity::Error,
                        format!(
                            "'{ifsc_cell}' is not an IFSC: 11 characters, 4 letters, a zero, then 6 letters or digits (e.g. SBIN0011243){}",
                            ifsc_hint(&upper)
                        ),
                        cols,
                    );
                    None
                }
                IfscCheck::Unknown => {
                    let sev = if self.opts.allow_unknown_ifsc { Severity::Warning } else { Severity::Error };
                    let hint = if self.opts.allow_unknown_ifsc {
                        "sending it anyway (--allow-unknown-ifsc)".to_string()
                    } else {
                        "check it, or pass --allow-unknown-ifsc for a branch newer than the directory".to_string()
                    };
                    push(
                        Field::Ifsc,
                        Code::UnknownIfsc,
                        sev,
                        format!(
                            "'{upper}' is well-formed but no bank branch has it in the directory {}: {}{hint}",
                            directory_version(),
                            unknown_ifsc_hint(&upper)
                        ),
                        cols,
                    );
                    Some(upper)
                }
                IfscCheck::Known(b) => {
                    branch = Some(b);
                    Some(upper)
                }
            }
        };

        let amount_cell = self.field(rec, Field::Amount);
        let amount_kind = self.kind(rec, Field::Amount);
        let amount = if amount_cell.is_empty() {
            push(Field::Amount, Code::MissingField, Severity::Error, missing(Field::Amount), cols);
            None
        } else if amount_kind == CellKind::Date {
            push(
                Field::Amount,
                Code::BadAmount,
                Severity::Error,
                format!(
                    "the cell is a date ({amount_cell}), not an amount: format the column as Number and re-enter it"
                ),
                cols,
            );
            None
        } else {
            match Amount::parse_cell(amount_cell) {
                Ok(a) => Some(a),
                Err(e) => {
                    let mut m = e.to_string();
                    if matches!(e, crate::money::AmountError::Syntax(_) | crate::money::AmountError::Grouping(_))
                        && decimal_comma(amount_cell)
                    {
                        m.push_str(
                            " (it looks like a decimal comma: write the amount with a decimal point, e.g. 1500.00 or 1,500.00)",
                        );
                    }
                    if matches!(e, crate::money::AmountError::Syntax(_)) && !decimal_comma(amount_cell) {
                        m.push_str(amount_hint(amount_cell));
                    }
                    if amount_kind == CellKind::Number && matches!(e, crate::money::AmountError::TooPrecise(_)) {
                        m.push_str(
                            " (the cell holds exactly this number: round it to paise in the sheet, e.g. with ROUND(x, 2))",
                        );
                    }
                    push(Field::Amount, Code::BadAmount, Severity::Error, m, cols);
                    None
                }
            }
        };

        let mode_cell = self.field(rec, Field::Mode);
        let mode = if mode_cell.is_empty() {
            // A formula whose value was never saved is not an empty cell: Excel shows a mode there,
            // so neither --mode-auto nor a default mode stands in for it.
            if self.kind(rec, Field::Mode) == CellKind::Unsaved {
                push(Field::Mode, Code::MissingField, Severity::Error, missing(Field::Mode), cols);
                None
            } else if self.opts.mode_auto {
                amount.map(|a| if a.paise() >= RTGS_MIN_PAISE { Mode::Rtgs } else { Mode::Imps })
            } else if let Some(m) = self.opts.default_mode {
                Some(m)
            } else {
                push(
                    Field::Mode,
                    Code::MissingField,
                    Severity::Error,
                    format!("{} is empty (or use --mode-auto)", Field::Mode.label()),
                    cols,
                );
                None
            }
        } else {
            match Mode::parse(mode_cell) {
                Some(m) => Some(m),
                None => {
                    push(
                        Field::Mode,
                        Code::BadMode,
                        Severity::Error,
                        format!("'{mode_cell}' is not a transfer mode: use NEFT, IMPS or RTGS"),
                        cols,
                    );
                    None
                }
            }
        };
        if let (Some(m), Some(a)) = (mode, amount) {
            if m == Mode::Imps && a.paise() > IMPS_MAX_PAISE {
                push(
                    Field::Mode,
                    Code::ModeLimit,
                    Severity::Error,
                    format!("IMPS allows at most ₹5,00,000 per payout; ₹{} needs NEFT or RTGS", a.to_indian()),
                    cols,
                );
            } else if m == Mode::Rtgs && a.paise() < RTGS_MIN_PAISE {
                push(
                    Field::Mode,
                    Code::ModeLimit,
                    Severity::Error,
                    format!("RTGS is for ₹2,00,000 and above; ₹{} needs NEFT or IMPS", a.to_indian()),
                    cols,
                );
            }
            if let Some(b) = branch {
                let rail = match m {
                    Mode::Neft => ifsc::BranchRail::Neft,
                    Mode::Imps => ifsc::BranchRail::Imps,
                    Mode::Rtgs => ifsc::BranchRail::Rtgs,
                };
                if !b.reports(rail) {
                    push(
                        Field::Mode,
                        Code::RailNotReported,
                        Severity::Warning,
                        format!(
                            "the directory does not list {m} for {} ({}, {}); the bank may refuse it",
                            b.ifsc(),
                            b.reported_bank_name().unwrap_or("bank"),
                            b.name()
                        ),
                        cols,
                    );
                }
            }
        }

        // Bank rails carry ASCII remarks: send the ASCII spelling, and say exactly what it is.
        let remarks_cell = self.field(rec, Field::Remarks);
        // A control character other than a tab or a line break (a stray NUL) is sent as a space.
        let stray = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r');
        let remarks = if remarks_cell.is_ascii() && !remarks_cell.contains(stray) {
            Cow::Borrowed(remarks_cell)
        } else {
            let spaced: String = remarks_cell.chars().map(|c| if stray(c) { ' ' } else { c }).collect();
            let ascii = to_ascii(&spaced);
            push(
                Field::Remarks,
                Code::RemarksChanged,
                Severity::Warning,
                format!("'{remarks_cell}' has characters bank rails do not carry: payrun will send '{ascii}'"),
                cols,
            );
            Cow::Owned(ascii)
        };

        let ref_cell = self.field(rec, Field::Reference);
        let reference = if ref_cell.is_empty() {
            None
        } else if !reference_ok(ref_cell) {
            push(
                Field::Reference,
                Code::BadRef,
                Severity::Error,
                format!(
                    "'{ref_cell}' is not a valid reference: 1 to 35 letters, digits, '_' or '-' (leave it empty to let payrun derive one)"
                ),
                cols,
            );
            None
        } else {
            let k = key(1, &[ref_cell.to_ascii_lowercase().as_bytes()]);
            match self.seen.first_or_insert(KeyKind::Reference, k, line as u32) {
                Some(first) => {
                    push(
                        Field::Reference,
                        Code::BadRef,
                        Severity::Error,
                        format!(
                            "reference '{ref_cell}' is already used on line {first} (references must be unique, ignoring case)"
                        ),
                        cols,
                    );
                    None
                }
                None => Some(ref_cell),
            }
        };

        if let (Some(acc), Some(code), Some(amt)) = (&account, &ifsc, amount) {
            let k = key(2, &[acc.as_bytes(), code.as_bytes(), &(amt.paise() as u64).to_le_bytes()]);
            match self.seen.first_or_insert(KeyKind::Row, k, line as u32) {
                Some(first) => {
                    let (sev, hint) = if self.opts.allow_duplicates {
                        (Severity::Warning, "allowed by --allow-duplicates")
                    } else {
                        (Severity::Error, "if both payments are intended, use --allow-duplicates")
                    };
                    problems.push(Problem {
                        line,
                        column: self.columns.heading(Field::Account),
                        code: Code::DuplicateRow,
                        severity: sev,
                        message: format!("same account, IFSC and amount as line {first}: {hint}"),
                    });
                }
                None => {}
            }
        }

        // SPEC 3.3: one account paid for two payees in one file (a diverted salary looks like this).
        // The index keeps, per account, a fingerprint of who it was first paid for.
        if let (Some(acc), Some(code)) = (&account, &ifsc) {
            let payee_id = self.field(rec, Field::PayeeId);
            let (who, what) = if self.columns.of(Field::PayeeId).is_some() {
                (payee_id.to_uppercase(), "payee id")
            } else {
                (name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase(), "name")
            };
            if !who.is_empty() {
                let fingerprint = key(5, &[who.as_bytes()])[0] | 1;
                let k = key(3, &[acc.trim_start_matches('0').as_bytes(), code.as_bytes()]);
                if let Some(first) = self.seen.first_or_insert(KeyKind::Payee, k, fingerprint) {
                    if first != fingerprint {
                        problems.push(Problem {
                            line,
                            column: self.columns.heading(Field::Account),
                            code: Code::SharedAccount,
                            severity: Severity::Warning,
                            message: format!(
                                "this account and IFSC are also paid on an earlier row under another {what}: one account for two payees; check it is not a diverted payment"
                            ),
                        });
                    }
                }
            }
        }

        // SPEC 3.2b: the lineage `payrun failed` wrote. A cell that is not one would unlink the
        // row from what it retries, so it is an error, never silently dropped.
        let retry_of = self.field(rec, Field::RetryOf);
        if !retry_of.is_empty() && !retry_of_ok(retry_of) {
            problems.push(Problem {
                line,
                column: self.columns.heading(Field::RetryOf),
                code: Code::BadRetryOf,
                severity: Severity::Error,
                message: format!(
                    "'{retry_of}' is not <batch id>:<line> as `payrun failed` writes it (e.g. 3f9a1c2b7d4e:18): restore it, or empty the cell (the row is then held only as a repeat payment)"
                ),
            });
        }

        if problems[before..].iter().any(|p| p.severity == Severity::Error) {
            return None;
        }
        Some(RowView {
            name,
            account: account?,
            ifsc: ifsc?,
            amount: amount?,
            mode: mode?,
            remarks,
            reference,
            payee_list_id: self.field(rec, Field::PayeeListId),
            email: self.field(rec, Field::Email),
            phone: self.field(rec, Field::Phone),
            payee_id: self.field(rec, Field::PayeeId),
            retry_of,
        })
    }
}

/// Whether `text` is a `retry_of` cell: a batch id (12 lower-case hex digits) and a line, `:` between.
pub fn retry_of_ok(text: &str) -> bool {
    match text.split_once(':') {
        Some((batch, line)) => {
            batch.len() == 12
                && batch.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                && !line.is_empty()
                && !line.starts_with('0')
                && line.len() <= 10
                && line.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_finds_every_key_across_growth() {
        let mut seen = Seen::with_capacity(4);
        for i in 0..50_000u32 {
            assert_eq!(seen.first_or_insert(key(2, &[&i.to_le_bytes()]), i + 2), None, "{i} is new");
        }
        for i in 0..50_000u32 {
            assert_eq!(seen.first_or_insert(key(2, &[&i.to_le_bytes()]), 1), Some(i + 2), "{i} seen on its line");
        }
        assert_eq!(seen.len, 50_000);
        // Keys differing in any part differ.
        assert_ne!(key(2, &[b"1234567890", b"SBIN0000001"]), key(2, &[b"123456789", b"0SBIN0000001"]));
    }

    #[test]
    fn mangled_accounts() {
        for m in [
            "3.96285E+10",
            "1.23E+016",
            "3.96285e10",
            "39628544321.0",
            "39628544321.00",
            "39,628,544,321",
            "3,96,28,544",
            "1.2E+16",
        ] {
            assert!(spreadsheet_mangled(m), "{m}");
        }
        for ok in ["39628544321", "0012345678901", "1234 5678 9012", "ABC", "12.5", "12-34"] {
            assert!(!spreadsheet_mangled(ok), "{ok}");
        }
    }

    #[test]
    fn the_name_hint_says_ascii_and_suggests_the_plain_spelling() {
        let m = check_name("Jürgen Groß").err().expect("error");
        assert!(m.contains("'ü'") && m.contains("ASCII letters"), "{m}");
        assert!(m.contains("perhaps 'Jurgen Gross'"), "{m}");
        assert!(!m.contains("Latin letters"), "ü is a Latin letter: {m}");
        let m = check_name("Zoë D'Souza").err().expect("error");
        assert!(m.contains("'Zoe D'Souza'"), "{m}");
        // Another script: no made-up spelling.
        let m = check_name("रवि शर्मा").err().expect("error");
        assert!(m.contains("ASCII") && m.contains("English letters") && !m.contains("perhaps"), "{m}");
        // An ASCII character that is not allowed: no spelling either.
        let m = check_name("Ravi_Kumar").err().expect("error");
        assert!(m.contains("'_'") && !m.contains("perhaps"), "{m}");
        // A suggestion that would itself be refused is not made.
        assert!(!check_name("Zoë_1").err().expect("error").contains("perhaps"));
    }

    #[test]
    fn the_name_hint_shows_invisible_characters_and_suggests_plain_punctuation() {
        let m = check_name("Ravi\u{a0}Kumar").err().expect("error");
        assert!(m.contains("a no-break space (U+00A0)") && m.contains("perhaps 'Ravi Kumar'"), "{m}");
        let m = check_name("Ravi\tKumar").err().expect("error");
        assert!(m.contains("contains a tab"), "{m}");
        let m = check_name("Ravi\u{200b}Kumar").err().expect("error");
        assert!(m.contains("an invisible character (U+200B)"), "{m}");
        // Excel's autocorrect: a curly apostrophe, an en dash.
        let m = check_name("O’Brien – Das").err().expect("error");
        assert!(m.contains("'’'") && m.contains("perhaps 'O'Brien - Das'"), "{m}");
        // Another script next to punctuation: still no made-up spelling.
        assert!(!check_name("रवि’").err().expect("error").contains("perhaps"));
    }

    #[test]
    fn decimal_commas_are_recognised() {
        for v in ["1500,00", "1.500,00", "1.234.567,5", "0,5"] {
            assert!(decimal_comma(v), "{v}");
        }
        for v in ["1,500", "1,50,000", "1500", "1.50,00", ",50", "1500,000"] {
            assert!(!decimal_comma(v), "{v}");
        }
    }

    #[test]
    fn remarks_become_ascii() {
        assert_eq!(to_ascii("Gehalt für Nov – ₹ 500"), "Gehalt fur Nov - Rs 500");
        assert_eq!(to_ascii("café € 50"), "cafe EUR 50");
        assert_eq!(to_ascii("plain"), "plain");
        assert!(to_ascii("北京 bonus").is_ascii());
    }

    #[test]
    fn names() {
        assert!(check_name("Ravi Kumar").is_ok());
        assert!(check_name("M/s. Shah & Sons (P) Ltd., O'Brien-Das").is_ok());
        assert!(check_name("Zoë").is_err());
        assert!(check_name("रवि").is_err());
        assert!(check_name(&"a".repeat(100)).is_ok());
        assert!(check_name(&"a".repeat(101)).is_err());
        assert!(check_name("a_b").is_err());
    }

    #[test]
    fn references() {
        assert!(reference_ok("SAL-2026-11_001"));
        assert!(reference_ok(&"a".repeat(35)));
        assert!(!reference_ok(&"a".repeat(36)));
        assert!(!reference_ok("ref 1"));
        assert!(!reference_ok("ref#1"));
    }

    #[test]
    fn directory_knows_real_branches() {
        assert!(matches!(check_ifsc("SBIN0011243"), IfscCheck::Known(_)));
        assert!(matches!(check_ifsc("HDFC0000001"), IfscCheck::Known(_)));
        assert!(matches!(check_ifsc("ABCD0123456"), IfscCheck::Unknown));
        assert!(matches!(check_ifsc("SBIN1011243"), IfscCheck::Bad));
        assert!(matches!(check_ifsc("SBIN001124"), IfscCheck::Bad));
        assert!(directory_version().contains("razorpay-ifsc"));
    }
}
