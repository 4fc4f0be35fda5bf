//! Reading a payout file: encoding, delimiter, header and records with their physical line numbers.
//!
//! This is the one place that opens an input file, shared by `validate` and `run` (the xsv way).
//! It streams: memory does not grow with the file. Two passes over the bytes: the first decides the
//! encoding (and hashes the file for the batch id when asked), the second parses.
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

/// What the first pass learned about the bytes.
#[derive(Clone, Debug)]
pub struct Sniffed {
    pub encoding: Encoding,
    /// SHA-256 of the file's bytes, when asked for (the batch id comes from it).
    pub sha256: Option<[u8; 32]>,
    pub bytes: u64,
}

/// Reads the whole file once: BOM, UTF-8 validity, and optionally its SHA-256.
pub fn sniff(path: &Path, hash: bool) -> Result<Sniffed, InputError> {
    let io_err = |e| InputError::Io { path: path.to_path_buf(), source: e };
    let mut f = File::open(path).map_err(io_err)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut hasher = hash.then(Sha256::new);
    let mut first = true;
    let mut encoding = Encoding::Utf8;
    let mut valid = true;
    // Bytes of an incomplete UTF-8 sequence at the end of the previous chunk.
    let mut carry: Vec<u8> = Vec::with_capacity(4);
    let mut total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        };
        total += n as u64;
        let mut chunk = &buf[..n];
        if let Some(h) = hasher.as_mut() {
            h.update(chunk);
        }
        if first {
            first = false;
            if chunk.starts_with(&[0xFF, 0xFE]) {
                encoding = Encoding::Utf16le;
            } else if chunk.starts_with(&[0xFE, 0xFF]) {
                encoding = Encoding::Utf16be;
            } else if chunk.starts_with(&[0xEF, 0xBB, 0xBF]) {
                encoding = Encoding::Utf8Bom;
                chunk = &chunk[3..];
            }
        }
        if !valid || matches!(encoding, Encoding::Utf16le | Encoding::Utf16be) {
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
    Ok(Sniffed { encoding, sha256: hasher.map(|h| h.finalize().into()), bytes: total })
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

/// Picks the delimiter from the first non-blank line: tab or semicolon when that line has more of
/// them than commas (outside quotes), else comma.
pub fn detect_delimiter(head: &[u8]) -> u8 {
    let line =
        head.split(|b| *b == b'\n' || *b == b'\r').find(|l| l.iter().any(|b| !b.is_ascii_whitespace())).unwrap_or(b"");
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
    if tabs > commas && tabs >= semis {
        b'\t'
    } else if semis > commas {
        b';'
    } else {
        b','
    }
}

/// One CSV record: its fields (UTF-8) and the physical line it starts on.
#[derive(Debug, Default, Clone)]
pub struct Record {
    pub line: u64,
    text: String,
    ends: Vec<usize>,
}

impl Record {
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
        self.iter().all(|f| trim(f).is_empty())
    }
}

/// Trims surrounding white space, no-break space and zero-width characters (SPEC section 2).
pub fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || matches!(c, '\u{feff}' | '\u{200b}' | '\u{200c}' | '\u{200d}'))
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
                    rec.line = start_line;
                    rec.text.clear();
                    // The decoded stream is UTF-8 (checked in the first pass, or produced by the decoder);
                    // a lossy conversion keeps this total anyway.
                    match std::str::from_utf8(&self.out[..nout]) {
                        Ok(s) => rec.text.push_str(s),
                        Err(_) => rec.text.push_str(&String::from_utf8_lossy(&self.out[..nout])),
                    }
                    rec.ends.clear();
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

/// An opened input file: how it was read, its header, and its records.
pub struct Source {
    pub path: PathBuf,
    pub sniffed: Sniffed,
    pub delimiter: u8,
    /// The header's fields, trimmed, as written in the file.
    pub header: Vec<String>,
    records: Records,
}

impl Source {
    /// Opens `path`: sniffs the encoding (hashing it when `hash`), detects the delimiter, reads the
    /// header. Fails with a file-level error when there is no header.
    pub fn open(path: &Path, hash: bool) -> Result<Source, InputError> {
        let sniffed = sniff(path, hash)?;
        let mut buf = BufReader::with_capacity(1 << 16, decoded(path, sniffed.encoding)?);
        let head = buf.fill_buf().map_err(|e| InputError::Io { path: path.to_path_buf(), source: e })?;
        let delimiter = detect_delimiter(head);
        let mut records = Records::new(buf, delimiter);
        let mut rec = Record::default();
        loop {
            let more = records.read(&mut rec).map_err(|e| InputError::Io { path: path.to_path_buf(), source: e })?;
            if !more {
                return Err(InputError::Empty { path: path.to_path_buf() });
            }
            if !rec.is_blank() {
                break;
            }
        }
        let header = rec.iter().map(|h| trim(h).to_string()).collect();
        Ok(Source { path: path.to_path_buf(), sniffed, delimiter, header, records })
    }

    /// The next non-blank data record, or `None` at the end of the file.
    pub fn next_record(&mut self, rec: &mut Record) -> Result<bool, InputError> {
        loop {
            let more = self.records.read(rec).map_err(|e| InputError::Io { path: self.path.clone(), source: e })?;
            if !more {
                return Ok(false);
            }
            if !rec.is_blank() {
                return Ok(true);
            }
        }
    }

    pub fn delimiter_label(&self) -> &'static str {
        match self.delimiter {
            b'\t' => "tab",
            b';' => "semicolon",
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
    }

    #[test]
    fn trim_removes_nbsp_and_bom() {
        assert_eq!(trim("\u{a0} SBIN0011243\u{a0}\t"), "SBIN0011243");
        assert_eq!(trim("\u{feff}Name"), "Name");
        assert_eq!(trim("  "), "");
    }
}
