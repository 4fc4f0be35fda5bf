//! Reading a payout file: what it is (CSV text or an .xlsx workbook, told by its content, never
//! by its name), encoding, delimiter, header and records with their physical line numbers.
//!
//! This is the one place that opens an input file, shared by `validate` and `run` (the xsv way).
//! A CSV file streams: memory does not grow with it. Two passes over the bytes: the first decides
//! what the file is and its encoding (and hashes it for the batch id when asked), the second
//! parses. A workbook is read by [`super::sheet`] into the same [`Record`]s, so the rules see a
//! sheet's rows exactly as they see a CSV file's. Any other kind of file (a PDF, an old `.xls`, a
//! zip, an image) is refused with one line naming what it is; its bytes are never printed.
//!
//! Records come from `csv_core` driven directly, because the line numbers must be the file's physical
//! lines (SPEC section 2), also after blank lines and quoted fields that span lines, and the `csv`
//! crate's positions do not attribute skipped blank lines to the next record.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};
use encoding_rs_io::DecodeReaderBytesBuilder;
use sha2::{Digest, Sha256};

use super::InputError;
use super::sheet::Sheet;

/// How the file's bytes were decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16le,
    Utf16be,
    /// Not valid UTF-8, so read as a whole as Windows-1252 (Excel's "CSV" on Windows).
    Windows1252,
}

impl Encoding {
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf8Bom => "utf-8-bom",
            Encoding::Utf16le => "utf-16le",
            Encoding::Utf16be => "utf-16be",
            Encoding::Windows1252 => "windows-1252",
        }
    }
}

/// What a payout file is, by its content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Delimited text.
    Csv,
    /// An Excel workbook (a zip container; [`Source::open`] makes sure it is one).
    Xlsx,
}

impl Format {
    pub fn label(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// What the first pass learned about the bytes.
#[derive(Clone, Debug)]
pub struct Sniffed {
    pub format: Format,
    /// How text was decoded (UTF-8 for a workbook, whose cells are Unicode already).
    pub encoding: Encoding,
    /// SHA-256 of the file's bytes, when asked for (the batch id comes from it). For a workbook
    /// sheet other than the one read by default, [`Source::open`] mixes the sheet's name in.
    pub sha256: Option<[u8; 32]>,
    pub bytes: u64,
}

const EXPORT: &str = "export the sheet as CSV or .xlsx";
const SAVE_AS: &str = "open it in Excel and save it as .xlsx or CSV";

/// What the first bytes of a file say it is.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// Text: CSV in some encoding (decided by the rest of the first pass).
    Text,
    /// UTF-16 text without a byte-order mark.
    Utf16(Encoding),
    /// A zip container: an .xlsx workbook if it holds one.
    Zip,
    /// An OLE2 compound file: an old .xls (or .doc), or a password-protected workbook.
    Ole2,
    /// Something else, named, with what to do about it.
    Foreign(&'static str, &'static str),
}

/// Magic numbers of formats an operator might pick up by mistake.
const MAGIC: [(&[u8], &str, &str); 6] = [
    (b"\x89PNG", "a PNG image", EXPORT),
    (b"\xFF\xD8\xFF", "a JPEG image", EXPORT),
    (b"GIF8", "a GIF image", EXPORT),
    (b"\x1F\x8B", "a gzip-compressed file", "extract it first"),
    (b"7z\xBC\xAF\x27\x1C", "a 7-Zip archive", "extract it first"),
    (b"Rar!", "a RAR archive", "extract it first"),
];

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Tells what a file is from its first bytes (up to 64 KiB).
fn classify(head: &[u8]) -> Kind {
    if [b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"].iter().any(|m| head.starts_with(*m)) {
        return zip_flavour(head).map_or(Kind::Zip, |(what, hint)| Kind::Foreign(what, hint));
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Kind::Ole2;
    }
    if head.starts_with(b"%PDF") {
        return Kind::Foreign("a PDF document", EXPORT);
    }
    // UTF-16 with a byte-order mark is text, NUL bytes and all.
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Kind::Text;
    }
    if let Some((_, what, hint)) = MAGIC.iter().find(|(m, _, _)| head.starts_with(m)) {
        return Kind::Foreign(what, hint);
    }
    let first = &head[..head.len().min(1024)];
    if first.contains(&0) {
        if let Some(e) = utf16_without_bom(first) {
            return Kind::Utf16(e);
        }
        // Binary by its bytes: a text file has no control characters but tab, line breaks and the
        // odd stray one (a NUL in one cell is that row's problem, named by the rules), where a
        // binary file has them everywhere.
        if binary(first) {
            return Kind::Foreign("a binary file", EXPORT);
        }
    }
    // Markup that some systems save under an .xls name.
    let text = first.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(first);
    let text = &text[text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len())..];
    if [b"<!doctype html".as_slice(), b"<html", b"<table"].iter().any(|p| starts_with_ignore_case(text, p)) {
        return Kind::Foreign("an HTML page (some systems save one under an .xls name)", SAVE_AS);
    }
    if starts_with_ignore_case(text, b"<?xml") {
        if contains(head, b"urn:schemas-microsoft-com:office:spreadsheet") {
            return Kind::Foreign("an Excel 2003 XML spreadsheet", SAVE_AS);
        }
        return Kind::Foreign("an XML document", EXPORT);
    }
    if text.starts_with(b"{\\rtf") {
        return Kind::Foreign("an RTF document", EXPORT);
    }
    Kind::Text
}

/// A zip container that is plainly not an .xlsx workbook, by the names of its first entries.
fn zip_flavour(head: &[u8]) -> Option<(&'static str, &'static str)> {
    // The first local header: name length at 26, extra length at 28, name from 30, then data.
    if head.len() > 30 {
        let name_len = usize::from(u16::from_le_bytes([head[26], head[27]]));
        let extra_len = usize::from(u16::from_le_bytes([head[28], head[29]]));
        if head.get(30..30 + name_len) == Some(b"mimetype".as_slice()) {
            let data = head.get(30 + name_len + extra_len..).unwrap_or(&[]);
            if data.starts_with(b"application/vnd.oasis.opendocument.spreadsheet") {
                return Some(("an OpenDocument spreadsheet (.ods)", "open it and save it as .xlsx or CSV"));
            }
            return Some(("an OpenDocument file", EXPORT));
        }
    }
    if contains(head, b"word/document.xml") {
        return Some(("a Word document (.docx)", EXPORT));
    }
    if contains(head, b"ppt/presentation.xml") {
        return Some(("a PowerPoint presentation (.pptx)", EXPORT));
    }
    if contains(head, b"xl/workbook.bin") {
        return Some(("an Excel binary workbook (.xlsb)", SAVE_AS));
    }
    None
}

/// Whether the first bytes of a file are binary, not text with a stray control character: more
/// than one in 32 of them (and at least 2) are C0 control bytes other than tab, line feed, form
/// feed, carriage return and escape (NUL included). Real binary files (executables, databases,
/// compressed or encrypted data) are far above that; a CSV file with one NUL in a cell is not.
fn binary(first: &[u8]) -> bool {
    let controls =
        first.iter().filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | 0x1B)).count();
    controls >= 2 && controls * 32 > first.len()
}

/// UTF-16 without a byte-order mark: in the first bytes, nearly every other byte is zero (the high
/// byte of a Latin character) and the others are not.
fn utf16_without_bom(first: &[u8]) -> Option<Encoding> {
    let pairs = first.len() / 2;
    if pairs < 8 {
        return None;
    }
    let zeros = |offset: usize| first.chunks_exact(2).filter(|p| p[offset] == 0).count();
    let (even, odd) = (zeros(0), zeros(1));
    let mostly = |n: usize| n * 10 >= pairs * 6;
    let rarely = |n: usize| n * 20 <= pairs;
    if mostly(odd) && rarely(even) {
        Some(Encoding::Utf16le)
    } else if mostly(even) && rarely(odd) {
        Some(Encoding::Utf16be)
    } else {
        None
    }
}

/// Reads the whole file once: what it is, BOM, UTF-8 validity, and optionally its SHA-256. Fails
/// with a one-line error naming the format for a file that is neither CSV nor a workbook.
pub fn sniff(path: &Path, hash: bool) -> Result<Sniffed, InputError> {
    let io_err = |e| InputError::Io { path: path.to_path_buf(), source: e };
    let mut f = File::open(path).map_err(io_err)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut hasher = hash.then(Sha256::new);
    let mut first = true;
    let mut format = Format::Csv;
    let mut encoding = Encoding::Utf8;
    let mut valid = true;
    // Bytes of an incomplete UTF-8 sequence at the end of the previous chunk.
    let mut carry: Vec<u8> = Vec::with_capacity(4);
    let mut total = 0u64;
    loop {
        let n = match read_up_to(&mut f, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return Err(io_err(e)),
        };
        total += n as u64;
        let mut chunk = &buf[..n];
        if let Some(h) = hasher.as_mut() {
            h.update(chunk);
        }
        if first {
            first = false;
            match classify(chunk) {
                Kind::Text => {}
                Kind::Utf16(e) => encoding = e,
                Kind::Zip => format = Format::Xlsx,
                Kind::Ole2 => return Err(old_office_file(path)),
                Kind::Foreign(what, hint) => {
                    return Err(InputError::NotTabular { path: path.to_path_buf(), what, hint });
                }
            }
            if chunk.starts_with(&[0xFF, 0xFE]) {
                encoding = Encoding::Utf16le;
            } else if chunk.starts_with(&[0xFE, 0xFF]) {
                encoding = Encoding::Utf16be;
            } else if chunk.starts_with(&[0xEF, 0xBB, 0xBF]) {
                encoding = Encoding::Utf8Bom;
                chunk = &chunk[3..];
            }
        }
        if !valid || format == Format::Xlsx || matches!(encoding, Encoding::Utf16le | Encoding::Utf16be) {
            if hasher.is_none() {
                break;
            }
            continue;
        }
        let joined;
        let data: &[u8] = if carry.is_empty() {
            chunk
        } else {
            joined = [carry.as_slice(), chunk].concat();
            carry.clear();
            &joined
        };
        if let Err(e) = std::str::from_utf8(data) {
            match e.error_len() {
                // Cut in the middle of a sequence: keep the tail for the next chunk.
                None => carry.extend_from_slice(&data[e.valid_up_to()..]),
                Some(_) => valid = false,
            }
        }
    }
    if !carry.is_empty() {
        valid = false;
    }
    if !valid {
        encoding = Encoding::Windows1252;
    }
    Ok(Sniffed { format, encoding, sha256: hasher.map(|h| h.finalize().into()), bytes: total })
}

/// The error for an OLE2 compound file: a password-protected workbook (Excel encrypts into one),
/// else an old-format Office file.
fn old_office_file(path: &Path) -> InputError {
    let encrypted = File::open(path)
        .map(|f| {
            matches!(
                <calamine::Xlsx<_> as calamine::Reader<_>>::new(BufReader::new(f)),
                Err(calamine::XlsxError::Password)
            )
        })
        .unwrap_or(false);
    let (what, hint) = if encrypted {
        (
            "a password-protected Excel workbook",
            "remove the password in Excel (File > Info > Protect Workbook) and save it again",
        )
    } else {
        ("an old-format Excel workbook (.xls, Excel 97-2003) or another old Office file", SAVE_AS)
    };
    InputError::NotTabular { path: path.to_path_buf(), what, hint }
}

/// Opens the file as a UTF-8 byte stream in the given encoding (BOM removed).
fn decoded(path: &Path, encoding: Encoding) -> Result<Box<dyn Read>, InputError> {
    let io_err = |e| InputError::Io { path: path.to_path_buf(), source: e };
    let mut f = File::open(path).map_err(io_err)?;
    let mut head = [0u8; 3];
    let n = read_up_to(&mut f, &mut head).map_err(io_err)?;
    let has_utf8_bom = n == 3 && head == [0xEF, 0xBB, 0xBF];
    f.seek(SeekFrom::Start(if has_utf8_bom { 3 } else { 0 })).map_err(io_err)?;
    Ok(match encoding {
        Encoding::Utf8 | Encoding::Utf8Bom => Box::new(f),
        Encoding::Utf16le => {
            Box::new(DecodeReaderBytesBuilder::new().encoding(Some(UTF_16LE)).bom_override(true).build(f))
        }
        Encoding::Utf16be => {
            Box::new(DecodeReaderBytesBuilder::new().encoding(Some(UTF_16BE)).bom_override(true).build(f))
        }
        Encoding::Windows1252 => {
            Box::new(DecodeReaderBytesBuilder::new().encoding(Some(WINDOWS_1252)).bom_sniffing(false).build(f))
        }
    })
}

/// How much decoded text [`first_line`] gathers at most to see the header line.
const HEAD: usize = 1 << 16;

/// Whether `head` holds a complete non-blank line that has a delimiter (or is a `sep=` line): the
/// line [`detect_delimiter`] decides on. Lines without any (a title above the header) are read
/// past.
fn head_complete(head: &[u8]) -> bool {
    let Some(end) = head.iter().rposition(|b| *b == b'\n' || *b == b'\r') else { return false };
    head[..end]
        .split(|b| *b == b'\n' || *b == b'\r')
        .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
        .any(|l| declared_delimiter(l).is_some() || l.iter().any(|b| matches!(b, b',' | b';' | b'\t')))
}

/// Reads from `r` until the first non-blank line that has a delimiter is complete (or 64 KiB, or
/// the end), so the delimiter is decided on the whole header line whatever sizes the reads come
/// in. (A decoding
/// reader's first read returns only the 3 bytes it peeked for a byte-order mark: deciding on one
/// `fill_buf` read `Name;Account No;...` in Windows-1252 as comma-separated.)
fn first_line(r: &mut dyn Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(8192);
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        head.extend_from_slice(&buf[..n]);
        if head_complete(&head) || head.len() >= HEAD {
            break;
        }
    }
    Ok(head)
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The delimiter an Excel `sep=` line declares (`sep=;` as the file's first line, which Excel
/// writes and reads to pick the delimiter whatever the machine's locale), if the first non-blank
/// line is one. Comma, semicolon, tab or `|`.
pub fn declared_delimiter(head: &[u8]) -> Option<u8> {
    let line = head.split(|b| *b == b'\n' || *b == b'\r').find(|l| l.iter().any(|b| !b.is_ascii_whitespace()))?;
    let line = line.strip_prefix(b"\"").and_then(|l| l.strip_suffix(b"\"")).unwrap_or(line);
    if line.len() == 5 && line[..4].eq_ignore_ascii_case(b"sep=") && matches!(line[4], b',' | b';' | b'\t' | b'|') {
        return Some(line[4]);
    }
    None
}

/// Picks the delimiter from the first non-blank line: tab or semicolon when that line has more of
/// them than commas (outside quotes), else comma.
pub fn detect_delimiter(head: &[u8]) -> u8 {
    // The first line that has a delimiter at all: a title line above the header (`Gehaltsliste
    // November 2026`) has none and says nothing about the table's delimiter.
    let (commas, semis, tabs) = head
        .split(|b| *b == b'\n' || *b == b'\r')
        .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
        .map(delimiters)
        .find(|&(c, s, t)| c + s + t > 0)
        .unwrap_or((0, 0, 0));
    if tabs > commas && tabs >= semis {
        b'\t'
    } else if semis > commas {
        b';'
    } else {
        b','
    }
}

/// Commas, semicolons and tabs of one line, outside quotes.
fn delimiters(line: &[u8]) -> (usize, usize, usize) {
    let (mut commas, mut semis, mut tabs, mut quoted) = (0usize, 0usize, 0usize, false);
    for b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semis += 1,
            b'\t' if !quoted => tabs += 1,
            _ => {}
        }
    }
    (commas, semis, tabs)
}

/// What a workbook cell held, for the rules that depend on it (a number in an account cell has
/// lost its leading zeros; a date is no amount). Every CSV field is text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CellKind {
    /// Text, or empty.
    #[default]
    Text,
    /// A number, read as its shortest exact decimal text (`1500`, `1500.5`).
    Number,
    /// A date, time or duration, read as ISO text (`2026-11-30`).
    Date,
    /// A logical value, read as `TRUE` or `FALSE`.
    Bool,
    /// A spreadsheet error such as `#N/A` or `#REF!`, read as that text.
    Error,
    /// An empty cell holding a formula whose value was never saved (a workbook written by a
    /// program and never opened in Excel): read as empty.
    Unsaved,
}

/// One record: its fields (UTF-8) and the physical line it starts on (for a sheet, its row number).
#[derive(Debug, Default, Clone)]
pub struct Record {
    pub line: u64,
    text: String,
    ends: Vec<usize>,
    /// Each field's kind, for a workbook's rows; empty for CSV (every field is text).
    kinds: Vec<CellKind>,
    /// A workbook row that Excel hides (by hand, or filtered out by an autofilter).
    pub hidden: bool,
}

impl Record {
    /// Starts a new record on `line`, with no fields.
    pub(crate) fn begin(&mut self, line: u64) {
        self.line = line;
        self.hidden = false;
        self.text.clear();
        self.ends.clear();
        self.kinds.clear();
    }

    /// Appends a field written by `write` into the record's text, of kind `kind`.
    pub(crate) fn push_with(&mut self, kind: CellKind, write: impl FnOnce(&mut String)) {
        write(&mut self.text);
        self.ends.push(self.text.len());
        self.kinds.push(kind);
    }

    /// What field `i` held in a workbook (always [`CellKind::Text`] for CSV).
    pub fn kind(&self, i: usize) -> CellKind {
        self.kinds.get(i).copied().unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i` as read (untrimmed); empty when out of range.
    pub fn get(&self, i: usize) -> &str {
        if i >= self.ends.len() {
            return "";
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..self.ends[i]).unwrap_or("")
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Whether every field is empty after trimming (a blank line, spaces, or only delimiters).
    pub fn is_blank(&self) -> bool {
        // Quick answer for the usual row: any visible ASCII character means not blank.
        if self.text.bytes().any(|b| b.is_ascii_graphic()) {
            return false;
        }
        // Also a line holding only DOS's end-of-file mark (Ctrl-Z, U+001A), which `copy` and old
        // DOS-era exports leave after the last line: it holds no data.
        self.iter().all(|f| trim(f).trim_matches('\u{1a}').is_empty())
    }
}

/// Trims surrounding white space (no-break space included) and invisible format characters (SPEC
/// section 2).
pub fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || invisible(c))
}

/// An invisible format character a copy from a web page, a PDF or a right-to-left text editor
/// leaves in a cell: zero-width space and joiners, the byte-order mark, direction marks and
/// embeddings (LRM, RLM, ALM, LRE..RLO, LRI..PDI), word joiner and invisible operators, soft
/// hyphen, Mongolian vowel separator.
pub fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
    )
}

/// Counts line breaks: LF, CRLF and a lone CR (Excel's "CSV (Macintosh)") each end one line,
/// also when a CRLF is split between two reads.
#[derive(Default)]
struct Breaks {
    after_cr: bool,
}

impl Breaks {
    fn count(&mut self, bytes: &[u8]) -> u64 {
        let Some(&last) = bytes.last() else { return 0 };
        let lf = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        let cr = bytes.iter().filter(|&&b| b == b'\r').count() as u64;
        // Every CR ends a line; an LF does unless it completes a CRLF (here, or split across reads).
        let crlf = if cr == 0 { 0 } else { bytes.windows(2).filter(|w| w == b"\r\n").count() as u64 };
        let split = u64::from(self.after_cr && bytes[0] == b'\n');
        self.after_cr = last == b'\r';
        cr + lf - crlf - split
    }
}

/// The longest record payrun reads (a stray quote would otherwise swallow the rest of the file
/// into one field, in memory).
const MAX_RECORD: usize = 1 << 20;

/// Streams records out of a decoded byte stream with physical line numbers.
pub struct Records {
    src: BufReader<Box<dyn Read>>,
    core: csv_core::Reader,
    /// Line number of the next byte to be consumed (1-based).
    line: u64,
    breaks: Breaks,
    out: Vec<u8>,
    ends: Vec<usize>,
    done: bool,
}

impl Records {
    fn new(src: BufReader<Box<dyn Read>>, delimiter: u8) -> Records {
        let core = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
        Records { src, core, line: 1, breaks: Breaks::default(), out: vec![0; 4096], ends: vec![0; 64], done: false }
    }

    /// Reads the next record into `rec` (blank ones included; the caller decides). `Ok(false)` at the end.
    pub fn read(&mut self, rec: &mut Record) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        let (mut nout, mut nend) = (0usize, 0usize);
        let mut started = false;
        let mut start_line = self.line;
        loop {
            let input = self.src.fill_buf()?;
            let eof = input.is_empty();
            let (res, nin, o, e) = self.core.read_record(input, &mut self.out[nout..], &mut self.ends[nend..]);
            // Count lines in what was consumed; the record starts at its first byte that is not a
            // line terminator left over from before (csv_core skips blank lines).
            let consumed = &input[..nin];
            if !started {
                if let Some(p) = consumed.iter().position(|&b| b != b'\n' && b != b'\r') {
                    started = true;
                    start_line = self.line + self.breaks.count(&consumed[..p]);
                    self.breaks.after_cr = false;
                    self.line = start_line;
                    self.line += self.breaks.count(&consumed[p..]);
                } else {
                    self.line += self.breaks.count(consumed);
                }
            } else {
                self.line += self.breaks.count(consumed);
            }
            self.src.consume(nin);
            nout += o;
            nend += e;
            match res {
                csv_core::ReadRecordResult::InputEmpty => {
                    if eof {
                        continue;
                    }
                }
                csv_core::ReadRecordResult::OutputFull => {
                    let len = self.out.len();
                    if len >= MAX_RECORD {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "the record starting at line {start_line} is over 1 MB: a quote that is never closed?"
                            ),
                        ));
                    }
                    self.out.resize(len * 2, 0);
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len();
                    self.ends.resize(len * 2, 0);
                }
                csv_core::ReadRecordResult::Record => {
                    rec.begin(start_line);
                    // The decoded stream is UTF-8 (checked in the first pass, or produced by the decoder);
                    // a lossy conversion keeps this total anyway.
                    match std::str::from_utf8(&self.out[..nout]) {
                        Ok(s) => rec.text.push_str(s),
                        Err(_) => rec.text.push_str(&String::from_utf8_lossy(&self.out[..nout])),
                    }
                    rec.ends.extend_from_slice(&self.ends[..nend]);
                    if rec.text.len() != nout {
                        // Lossy conversion changed byte offsets: re-split on the converted text is not
                        // possible, so keep the fields as one (the row will fail its rules, not panic).
                        rec.ends.clear();
                        rec.ends.push(rec.text.len());
                    }
                    return Ok(true);
                }
                csv_core::ReadRecordResult::End => {
                    self.done = true;
                    return Ok(false);
                }
            }
        }
    }
}

/// Where a [`Source`]'s records come from.
enum Rows {
    Csv(Box<Records>),
    Sheet(Sheet),
}

/// An opened input file: how it was read, its header, and its records.
pub struct Source {
    pub path: PathBuf,
    pub sniffed: Sniffed,
    /// The field delimiter of a CSV file (0 for a workbook).
    pub delimiter: u8,
    /// The header's fields, trimmed, as written in the file.
    pub header: Vec<String>,
    /// For a workbook: the sheet read.
    pub sheet: Option<String>,
    /// For a workbook: every worksheet's name, in workbook order.
    pub sheets: Vec<String>,
    rows: Rows,
}

impl Source {
    /// Opens `path`: tells CSV from a workbook by content, sniffs the encoding (hashing the file
    /// when `hash`), detects the delimiter or picks the sheet (`sheet`, else the first visible
    /// one), reads the header. Fails with a file-level error when there is no header, when the
    /// file is another format, or when `sheet` is named for a CSV file or is not in the workbook.
    pub fn open(path: &Path, hash: bool, sheet: Option<&str>) -> Result<Source, InputError> {
        let mut sniffed = sniff(path, hash)?;
        let io_err = |e| InputError::Io { path: path.to_path_buf(), source: e };
        let mut source = match sniffed.format {
            Format::Xlsx => {
                let book = Sheet::open(path, sheet)?;
                // Two sheets of one workbook are two payment files: they must not share a batch id.
                // The sheet read by default keeps the file's own hash, so a batch can still be
                // found by the file's path.
                if let (Some(sha), false) = (sniffed.sha256.as_mut(), book.is_default) {
                    let mut h = Sha256::new();
                    h.update(*sha);
                    h.update(b"\0sheet\0");
                    h.update(book.name.as_bytes());
                    *sha = h.finalize().into();
                }
                Source {
                    path: path.to_path_buf(),
                    sniffed,
                    delimiter: 0,
                    header: Vec::new(),
                    sheet: Some(book.name.clone()),
                    sheets: book.names.clone(),
                    rows: Rows::Sheet(book),
                }
            }
            Format::Csv => {
                if let Some(name) = sheet {
                    return Err(InputError::SheetOfCsv { path: path.to_path_buf(), sheet: name.to_string() });
                }
                let mut decoded = decoded(path, sniffed.encoding)?;
                let head = first_line(&mut decoded).map_err(io_err)?;
                let declared = declared_delimiter(&head);
                let delimiter = declared.unwrap_or_else(|| detect_delimiter(&head));
                let stream: Box<dyn Read> = Box::new(io::Cursor::new(head).chain(decoded));
                let records = Records::new(BufReader::with_capacity(1 << 16, stream), delimiter);
                let mut source = Source {
                    path: path.to_path_buf(),
                    sniffed,
                    delimiter,
                    header: Vec::new(),
                    sheet: None,
                    sheets: Vec::new(),
                    rows: Rows::Csv(Box::new(records)),
                };
                if declared.is_some() {
                    // The `sep=` line itself: not the header, not a row (the header keeps its
                    // physical line number, 2).
                    source.next_record(&mut Record::default())?;
                }
                source
            }
        };
        let mut rec = Record::default();
        if !source.next_record(&mut rec)? {
            if let (Some(sheet), true) = (&source.sheet, source.sheets.len() > 1) {
                return Err(InputError::EmptySheet {
                    path: path.to_path_buf(),
                    sheet: sheet.clone(),
                    sheets: source.sheets.clone(),
                });
            }
            return Err(InputError::Empty { path: path.to_path_buf() });
        }
        source.header = rec.iter().map(|h| trim(h).to_string()).collect();
        Ok(source)
    }

    /// The next non-blank data record, or `None` at the end of the file.
    pub fn next_record(&mut self, rec: &mut Record) -> Result<bool, InputError> {
        loop {
            let more = match &mut self.rows {
                Rows::Csv(r) => r.read(rec).map_err(|e| InputError::Io { path: self.path.clone(), source: e })?,
                Rows::Sheet(s) => s.read(rec),
            };
            if !more {
                return Ok(false);
            }
            if !rec.is_blank() {
                return Ok(true);
            }
        }
    }

    /// About how many rows the file has (to size the duplicate index).
    pub fn rows_estimate(&self) -> u64 {
        match &self.rows {
            Rows::Csv(_) => self.sniffed.bytes / 80,
            Rows::Sheet(s) => s.rows() as u64,
        }
    }

    /// How fields are separated: `comma`, `semicolon` or `tab`; `sheet` for a workbook.
    pub fn delimiter_label(&self) -> &'static str {
        match (&self.rows, self.delimiter) {
            (Rows::Sheet(_), _) => "sheet",
            (_, b'\t') => "tab",
            (_, b';') => "semicolon",
            (_, b'|') => "pipe",
            _ => "comma",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &[u8], delimiter: u8) -> Vec<(u64, Vec<String>)> {
        let boxed: Box<dyn Read> = Box::new(io::Cursor::new(text.to_vec()));
        let mut r = Records::new(BufReader::with_capacity(7, boxed), delimiter);
        let mut rec = Record::default();
        let mut out = Vec::new();
        while r.read(&mut rec).expect("read") {
            out.push((rec.line, rec.iter().map(str::to_string).collect()));
        }
        out
    }

    #[test]
    fn physical_line_numbers_survive_blank_lines_crlf_and_multiline_fields() {
        let got = records(b"a,b\r\n\r\n1,2\r\n   \r\n\"x\ny\",3\n,,\n\n4,5,6\n7,8", b',');
        let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![1, 3, 4, 5, 7, 9, 10]);
        assert_eq!(got[3].1, vec!["x\ny", "3"]);
        assert_eq!(got[6].1, vec!["7", "8"]);
    }

    #[test]
    fn carriage_return_only_files_count_lines_too() {
        let got = records(b"a,b\r1,2\r\r3,4\r\"x\ry\",5\r6,7", b',');
        assert_eq!(got.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![1, 2, 4, 5, 7]);
        // A CRLF split across two reads counts once (the reader's buffer here is 7 bytes).
        let got = records(b"abcde,\r\n1,2\r\n3,4\r\n", b',');
        assert_eq!(got.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn an_unterminated_quote_is_an_error_not_a_memory_blowup() {
        let mut text = b"a,b\n\"never closed,1\n".to_vec();
        text.extend(std::iter::repeat_n(b"x,y\n".as_slice(), 400_000).flatten());
        let boxed: Box<dyn Read> = Box::new(io::Cursor::new(text));
        let mut r = Records::new(BufReader::new(boxed), b',');
        let mut rec = Record::default();
        assert!(r.read(&mut rec).expect("header"));
        let err = r.read(&mut rec).err().expect("too long");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn leading_blank_lines_count() {
        let got = records(b"\n\r\nname;amount\n\nx;1\n", b';');
        assert_eq!(got.iter().map(|(l, _)| *l).collect::<Vec<_>>(), vec![3, 5]);
    }

    #[test]
    fn delimiter_detection() {
        assert_eq!(detect_delimiter(b"Name,Account,IFSC,Amount\n"), b',');
        assert_eq!(detect_delimiter(b"Name;Account;IFSC;Amount\r\n1,2;3"), b';');
        assert_eq!(detect_delimiter(b"\n\nName\tAccount\tIFSC\tAmount\n"), b'\t');
        assert_eq!(detect_delimiter(b"\"a;b\",c,d\n"), b',');
        assert_eq!(detect_delimiter(b""), b',');
        // A title line without delimiters above the header does not decide.
        assert_eq!(detect_delimiter(b"Gehaltsliste November 2026\r\nName;Konto;IFSC;Betrag\r\n"), b';');
        assert_eq!(detect_delimiter(b"ACME\n\nName\tAccount\tIFSC\n"), b'\t');
    }

    #[test]
    fn an_excel_sep_line_declares_the_delimiter() {
        assert_eq!(declared_delimiter(b"sep=;\r\nName;Account\r\n"), Some(b';'));
        assert_eq!(declared_delimiter(b"SEP=,\nName;Account\n"), Some(b','));
        assert_eq!(declared_delimiter(b"\"sep=\t\"\nName\tAccount\n"), Some(b'\t'));
        assert_eq!(declared_delimiter(b"sep=|"), Some(b'|'));
        assert_eq!(declared_delimiter(b"Name;Account\n"), None);
        assert_eq!(declared_delimiter(b"sep=;x\n"), None);
        assert_eq!(declared_delimiter(b""), None);
    }

    /// A reader that hands out at most 3 bytes a read, as a decoding reader's first read does.
    struct Trickle(io::Cursor<Vec<u8>>);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn the_whole_header_line_decides_the_delimiter_whatever_the_read_sizes() {
        let text = b"\r\nName;Account No;IFSC;Amount;Mode;Remarks\r\nRavi;1,5;x;1;NEFT;a,b,c\r\n";
        let head = first_line(&mut Trickle(io::Cursor::new(text.to_vec()))).expect("reads");
        assert!(head.starts_with(b"\r\nName;Account No;IFSC;Amount;Mode;Remarks\r"), "{head:?}");
        assert!(head.len() < text.len(), "stops after the header line");
        assert_eq!(detect_delimiter(&head), b';');
        // Nothing but the first 3 bytes, as before, would have said comma.
        assert_eq!(detect_delimiter(b"Nam"), b',');
        // A file shorter than one line, or empty, is read to its end.
        assert_eq!(first_line(&mut Trickle(io::Cursor::new(b"a;b".to_vec()))).expect("reads"), b"a;b");
        assert!(first_line(&mut Trickle(io::Cursor::new(Vec::new()))).expect("reads").is_empty());
    }

    #[test]
    fn formats_are_told_by_their_first_bytes() {
        assert_eq!(classify(b"Name,Account\n"), Kind::Text);
        assert_eq!(classify(b"\xFF\xFEN\0a\0"), Kind::Text, "UTF-16 with a BOM");
        assert_eq!(classify(b"PK\x03\x04\x14\0\0\0"), Kind::Zip);
        assert_eq!(classify(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0]), Kind::Ole2);
        assert!(matches!(classify(b"%PDF-1.4\n"), Kind::Foreign("a PDF document", _)));
        assert!(matches!(classify(b"\x89PNG\r\n\x1a\n"), Kind::Foreign("a PNG image", _)));
        // Binary by many control bytes; one stray NUL in text is that row's problem, not the file's.
        assert!(matches!(classify(b"ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0"), Kind::Foreign("a binary file", _)));
        assert!(matches!(classify(b"abc\0\0def"), Kind::Foreign("a binary file", _)));
        let mut text = b"Name,Account Number,IFSC,Amount,Mode\n".repeat(20);
        text.extend_from_slice(b"Ravi\0Kumar,111111111,SBIN0000001,100,NEFT\n");
        assert_eq!(classify(&text), Kind::Text);
        assert_eq!(classify(b"Name\0,x"), Kind::Text);
        assert!(matches!(classify(b"  <HTML><body>"), Kind::Foreign(w, _) if w.contains("HTML")));
        let xml = b"<?xml version=\"1.0\"?>\n<Workbook xmlns=\"urn:schemas-microsoft-com:office:spreadsheet\">";
        assert!(matches!(classify(xml), Kind::Foreign("an Excel 2003 XML spreadsheet", _)));
        let le: Vec<u8> = "Name,Account,IFSC\r\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(classify(&le), Kind::Utf16(Encoding::Utf16le));
        let be: Vec<u8> = "Name,Account,IFSC\r\n".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(classify(&be), Kind::Utf16(Encoding::Utf16be));
        // An OpenDocument spreadsheet: a zip whose first entry is its stored mimetype.
        let mut ods = b"PK\x03\x04".to_vec();
        ods.extend([0u8; 22]);
        ods.extend(8u16.to_le_bytes());
        ods.extend(0u16.to_le_bytes());
        ods.extend(b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet");
        assert!(matches!(classify(&ods), Kind::Foreign("an OpenDocument spreadsheet (.ods)", _)));
    }

    #[test]
    fn trim_removes_nbsp_and_bom() {
        assert_eq!(trim("\u{a0} SBIN0011243\u{a0}\t"), "SBIN0011243");
        assert_eq!(trim("\u{feff}Name"), "Name");
        assert_eq!(trim("  "), "");
    }

    #[test]
    fn trim_removes_direction_marks_and_other_invisible_format_characters() {
        // A cell copied from a right-to-left document or a web page: LRM, RLM, embeddings,
        // isolates, word joiner, soft hyphen (SPEC section 2 names direction marks).
        assert_eq!(trim("\u{200e}39628544321\u{200f}"), "39628544321");
        assert_eq!(trim("\u{202a}SBIN0011243\u{202c}"), "SBIN0011243");
        assert_eq!(trim("\u{2066}NEFT\u{2069}"), "NEFT");
        assert_eq!(trim("\u{2060} 1500.00\u{00ad}"), "1500.00");
        assert_eq!(trim("\u{061c}\u{200e}"), "");
        // Inside a value they stay (the field's rule reports them).
        assert_eq!(trim("Ravi\u{200e}Kumar"), "Ravi\u{200e}Kumar");
    }
}
