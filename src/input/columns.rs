//! Matching a file's header to payrun's fields (SPEC section 2).
//!
//! Headings are compared after keeping only their letters and digits, lower-cased: so `Account No.`,
//! `account_no` and `ACCOUNT-NO` are one heading, and `Amount (₹)` is `amount`. (SPEC asks to ignore
//! case, spaces, `_` and `-`; dropping all punctuation is a superset that also covers `A/c No.` and
//! `Amount (INR)`.) When two columns could be the same field, the heading earlier in the alias list
//! wins and the other is kept as an unknown column, with a note, rather than guessing silently.
//!
//! This module owns the alias table (also the source of the headings `--help` lists). It must never
//! map a column payrun writes itself for the operator to read (`last_error`, added by `payrun
//! failed`): running such a file keeps that column as an unknown one.

use super::InputError;

/// A field payrun understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Name,
    Account,
    Ifsc,
    Amount,
    Mode,
    Remarks,
    Reference,
    PayeeListId,
    Email,
    Phone,
    /// The organisation's own id of the person or firm paid (Employee ID, Vendor Code...): what
    /// the payee-change control of SPEC 3.3 follows from one batch to the next.
    PayeeId,
    /// `retry_of`, written by `payrun failed`: the original obligation (`<batch id>:<line>`) a retry
    /// row pays again (SPEC 3.2b). It never changes what is paid, only what is held.
    RetryOf,
}

impl Field {
    pub const ALL: [Field; 12] = [
        Field::Name,
        Field::Account,
        Field::Ifsc,
        Field::Amount,
        Field::Mode,
        Field::Remarks,
        Field::Reference,
        Field::PayeeListId,
        Field::Email,
        Field::Phone,
        Field::PayeeId,
        Field::RetryOf,
    ];

    /// The field's plain name, used in messages when the file has no such column.
    pub fn label(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Account => "account number",
            Field::Ifsc => "IFSC",
            Field::Amount => "amount",
            Field::Mode => "transfer mode",
            Field::Remarks => "remarks",
            Field::Reference => "external reference",
            Field::PayeeListId => "payee list id",
            Field::Email => "email",
            Field::Phone => "phone",
            Field::PayeeId => "payee id",
            Field::RetryOf => "retry of",
        }
    }

    /// Accepted headings as people write them, best first; a file's heading matches one when
    /// both are the same once [`normalise`]d. The gateway's own field names are included.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Name => &[
                "Beneficiary Name",
                "Name as per Bank",
                "Account Holder Name",
                "Bank Account Name",
                "Bene Name",
                "Name of Beneficiary",
                "Account Holder's Name",
                "Payee Name",
                "Name",
                "Beneficiary",
                "Payee",
                "Account Name",
                "Account Holder",
                "Holder Name",
                "Employee Name",
                "Vendor Name",
                "Customer Name",
                "Full Name",
            ],
            Field::Account => &[
                "accountNumber",
                "Beneficiary Account Number",
                "Bank Account Number",
                "Account No",
                "Beneficiary Account No",
                "Bank Account No",
                "Bene Account No",
                "Bene Account Number",
                "Beneficiary A/c No",
                "Beneficiary A/c Number",
                "Bene A/c No",
                "Bank A/c No",
                "Acc No",
                "A/c No",
                "Acct No",
                "A/c Number",
                "Account Num",
                "Bank Account",
                "Beneficiary Account",
                "Account",
            ],
            Field::Ifsc => &[
                "bankIfsc",
                "IFSC",
                "IFSC Code",
                "Bank IFSC Code",
                "Beneficiary IFSC",
                "Beneficiary IFSC Code",
                "Bene IFSC",
                "IFSC No",
                "IFS Code",
                "Beneficiary Bank IFSC",
                "Bene Bank IFSC",
            ],
            Field::Amount => &[
                "amount",
                "Amount (INR)",
                "Amount (Rs)",
                "Amt",
                "Pay Amount",
                "Payment Amount",
                "Payout Amount",
                "Transfer Amount",
                "Net Pay",
                "Net Amount",
                "Net Salary",
                "Amount Payable",
                "Amount to be Paid",
                "Net Payable",
                "Net Amount Payable",
            ],
            Field::Mode => &[
                "transferMode",
                "Mode",
                "Payment Mode",
                "Transfer Type",
                "Mode of Payment",
                "Payment Type",
                "Txn Mode",
                "Payment Method",
                "Transaction Mode",
                "Pay Mode",
            ],
            Field::Remarks => &[
                "remarks",
                "Remark",
                "Narration",
                "Description",
                "Purpose",
                "Payment Remarks",
                "Notes",
                "Note",
                "Comments",
                "Comment",
            ],
            Field::Reference => &[
                "externalRef",
                "External Reference",
                "Reference",
                "Reference No",
                "Reference Number",
                "Ref No",
                "Ref",
                "Payment Reference",
                "Payment Ref",
                "Txn Ref",
                "Transaction Ref",
                "Transaction Reference",
            ],
            Field::PayeeListId => &["payeeListId", "Payee List"],
            Field::Email => &["Email", "Email ID", "Email Address", "Mail"],
            Field::Phone => &[
                "Phone",
                "Phone No",
                "Phone Number",
                "Mobile",
                "Mobile No",
                "Mobile Number",
                "Contact",
                "Contact No",
                "Contact Number",
            ],
            Field::PayeeId => &[
                "Payee ID",
                "Employee ID",
                "Emp ID",
                "Employee Code",
                "Emp Code",
                "Employee No",
                "Employee Number",
                "Emp No",
                "Staff ID",
                "Staff Code",
                "Vendor Code",
                "Vendor ID",
                "Vendor No",
                "Supplier Code",
                "Supplier ID",
                "Beneficiary ID",
                "Beneficiary Code",
                "Bene ID",
                "Payee Code",
            ],
            Field::RetryOf => &["retry_of"],
        }
    }
}

/// Headings (normalised) that payrun writes into files it produces for people, never read as a
/// field: `last_error` is `payrun failed`'s reason column, and a file made by `failed` is meant to
/// be corrected and run again.
pub const RESERVED: [&str; 1] = ["lasterror"];

/// Whether the field must have a column (the transfer mode only when `mode_required`).
fn required(field: Field) -> &'static str {
    match field {
        Field::Name | Field::Account | Field::Ifsc | Field::Amount => "required",
        Field::Mode => "required unless --mode-auto or run.default_mode",
        _ => "optional",
    }
}

/// The accepted headings for `--help`, generated from the alias table, wrapped to `width` columns.
pub fn help(width: usize) -> String {
    let mut out = String::from(
        "Column headings, in any order; case, spaces and punctuation are ignored\n(other columns are kept and copied to the result file):\n",
    );
    for field in Field::ALL {
        let mut line = format!("  {} ({}):", field.label(), required(field));
        for (i, alias) in field.aliases().iter().enumerate() {
            let word = if i + 1 < field.aliases().len() { format!(" {alias},") } else { format!(" {alias}") };
            if line.len() + word.len() > width {
                out.push_str(&line);
                out.push('\n');
                line = String::from("     ");
            }
            line.push_str(&word);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A heading as an error message shows it: control characters replaced, at most 40 characters.
fn shown(heading: &str) -> String {
    let mut s: String = heading.chars().take(40).map(|c| if c.is_control() { '?' } else { c }).collect();
    if heading.chars().nth(40).is_some() {
        s.push('…');
    }
    s
}

/// A heading normalised for matching: letters and digits only, lower case.
pub fn normalise(heading: &str) -> String {
    heading.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Currency words an amount heading may end with (`Net Pay (INR)`, `Amount in Rs.`), normalised:
/// the heading without them is matched against the amount's aliases. (`₹` is not a letter, so
/// [`normalise`] drops it already.)
const CURRENCY_SUFFIXES: [&str; 6] = ["ininr", "inrs", "inrupees", "inr", "rs", "rupees"];

/// The rank of the alias of `field` that the normalised heading `norm` matches, if any. An amount
/// heading also matches with a currency word after it (`Net Pay (INR)`, `Net Amount in Rs`).
fn alias_rank(field: Field, norm: &str) -> Option<usize> {
    let exact = field.aliases().iter().position(|a| normalise(a) == norm);
    if exact.is_some() || field != Field::Amount {
        return exact;
    }
    CURRENCY_SUFFIXES
        .iter()
        .filter_map(|suffix| norm.strip_suffix(suffix))
        .filter(|rest| !rest.is_empty())
        .find_map(|rest| field.aliases().iter().position(|a| normalise(a) == rest))
}

/// How many of the required fields (name, account number, IFSC, amount) some heading of `header`
/// names: 0 for a line that is not a header at all (a title above the table, a data row).
pub fn recognised(header: &[String]) -> usize {
    let norm: Vec<String> = header.iter().map(|h| normalise(h)).collect();
    [Field::Name, Field::Account, Field::Ifsc, Field::Amount]
        .iter()
        .filter(|f| norm.iter().any(|n| alias_rank(**f, n).is_some()))
        .count()
}

/// Where each field is in the file.
#[derive(Clone, Debug)]
pub struct Columns {
    /// The header as written (trimmed).
    pub header: Vec<String>,
    index: [Option<usize>; Field::ALL.len()],
    /// Notes about the mapping worth telling the operator (a column passed over).
    pub notes: Vec<String>,
}

impl Columns {
    /// Maps a header. `mode_required` is false with `--mode-auto` or a configured default mode.
    pub fn map(header: &[String], mode_required: bool) -> Result<Columns, InputError> {
        let norm: Vec<String> = header.iter().map(|h| normalise(h)).collect();
        let mut index = [None; Field::ALL.len()];
        let mut taken: Vec<bool> = norm.iter().map(|n| RESERVED.contains(&n.as_str())).collect();
        let mut notes = Vec::new();
        for (fi, field) in Field::ALL.iter().enumerate() {
            let mut candidates: Vec<(usize, usize)> = Vec::new(); // (alias rank, column)
            for (col, n) in norm.iter().enumerate() {
                if taken[col] {
                    continue;
                }
                if let Some(rank) = alias_rank(*field, n) {
                    candidates.push((rank, col));
                }
            }
            candidates.sort();
            if let Some(&(_, col)) = candidates.first() {
                // Two candidates for a field that decides where money goes: refuse to guess.
                let critical = matches!(field, Field::Account | Field::Ifsc | Field::Amount | Field::Mode);
                if let (true, Some(&(_, other))) = (critical, candidates.get(1)) {
                    return Err(InputError::Ambiguous {
                        path: std::path::PathBuf::new(),
                        why: format!(
                            "columns '{}' and '{}' could both be the {}: rename or remove one",
                            header[col],
                            header[other],
                            field.label()
                        ),
                    });
                }
                index[fi] = Some(col);
                taken[col] = true;
                for &(_, other) in &candidates[1..] {
                    notes.push(format!(
                        "columns '{}' and '{}' both look like the {}; using '{}', keeping '{}' as an extra column",
                        header[col],
                        header[other],
                        field.label(),
                        header[col],
                        header[other]
                    ));
                }
            }
        }
        let mut required = vec![Field::Name, Field::Account, Field::Ifsc, Field::Amount];
        if mode_required {
            required.push(Field::Mode);
        }
        let missing: Vec<Field> = required.into_iter().filter(|f| index[*f as usize].is_none()).collect();
        if !missing.is_empty() {
            return Err(InputError::MissingColumns {
                missing: missing.iter().map(|f| f.label().to_string()).collect(),
                hint: missing
                    .iter()
                    .map(|f| format!("{}: {}", f.label(), f.aliases()[..4.min(f.aliases().len())].join(", ")))
                    .collect(),
                header: header.iter().map(|h| shown(h)).collect(),
                mode: missing.contains(&Field::Mode),
                sheet: String::new(),
            });
        }
        Ok(Columns { header: header.to_vec(), index, notes })
    }

    /// The column index of a field, if the file has it.
    pub fn of(&self, field: Field) -> Option<usize> {
        self.index[field as usize]
    }

    /// The heading to name in a message about `field`.
    pub fn heading(&self, field: Field) -> String {
        match self.of(field) {
            Some(i) => self.header[i].clone(),
            None => field.label().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn gateway_names_and_spreadsheet_headings_map() {
        for header in [
            h(&[
                "Name",
                "accountNumber",
                "bankIfsc",
                "amount",
                "transferMode",
                "externalRef",
                "payeeListId",
                "remarks",
            ]),
            h(&["Beneficiary Name", "Account No", "IFSC Code", "Amount", "Mode", "Reference", "Narration"]),
            h(&["BENEFICIARY_NAME", "account-no.", "ifsc code", "Amount (₹)", "Payment Mode", "Ref No", "Remarks"]),
            h(&["Name", "A/c No.", "IFSC", "Net Pay", "Transfer Type"]),
        ] {
            let c = Columns::map(&header, true).unwrap_or_else(|e| panic!("{header:?}: {e}"));
            assert_eq!(c.of(Field::Name), Some(0));
            assert_eq!(c.of(Field::Account), Some(1));
            assert_eq!(c.of(Field::Ifsc), Some(2));
            assert_eq!(c.of(Field::Amount), Some(3));
            assert_eq!(c.of(Field::Mode), Some(4));
        }
    }

    #[test]
    fn payee_id_headings() {
        for heading in ["Employee ID", "Emp Code", "Vendor Code", "Payee ID", "Beneficiary ID", "EMP_NO"] {
            let c = Columns::map(&h(&["Name", "Account", "IFSC", "Amount", "Mode", heading, "payeeListId"]), true)
                .unwrap_or_else(|e| panic!("{heading}: {e}"));
            assert_eq!(c.of(Field::PayeeId), Some(5), "{heading}");
            assert_eq!(c.of(Field::PayeeListId), Some(6), "{heading}: the gateway's payee list is another field");
        }
    }

    #[test]
    fn every_alias_names_one_field_and_none_is_reserved() {
        let mut seen = std::collections::HashMap::new();
        for field in Field::ALL {
            for alias in field.aliases() {
                let n = normalise(alias);
                assert!(!n.is_empty(), "{alias}");
                assert!(!RESERVED.contains(&n.as_str()), "{alias} is reserved");
                if let Some(other) = seen.insert(n, field) {
                    panic!("'{alias}' names both {other:?} and {field:?}");
                }
            }
        }
    }

    #[test]
    fn last_error_is_never_a_field() {
        for heading in ["last_error", "Last Error", "LAST-ERROR", "lastError"] {
            let header = h(&["Name", "Account", "IFSC", "Amount", "Mode", heading]);
            let c = Columns::map(&header, true).expect("maps");
            for field in Field::ALL {
                assert_ne!(c.of(field), Some(5), "{heading} mapped to {field:?}");
            }
            assert!(c.notes.is_empty(), "{:?}", c.notes);
            // Not even when it is the only candidate left for an optional field.
            let header = h(&["Name", "Account", "IFSC", "Amount", "Mode", heading, "Remarks"]);
            let c = Columns::map(&header, true).expect("maps");
            assert_eq!(c.of(Field::Remarks), Some(6));
        }
    }

    #[test]
    fn bank_template_headings_map() {
        // Headings of Indian banks' bulk-payment templates and HRMS exports, upper case and dotted.
        for header in [
            h(&["BENE NAME", "BENEFICIARY A/C NO.", "IFSC CODE", "NET AMOUNT (₹)", "PAYMENT MODE"]),
            h(&["Name of Beneficiary", "Bene A/c No", "IFS Code", "Net Pay (INR)", "Transaction Mode"]),
            h(&["Account Holder's Name", "Bank A/c No.", "Beneficiary Bank IFSC", "Amount in Rs.", "Pay Mode"]),
            h(&["Beneficiary Name", "Beneficiary A/c Number", "IFSC", "Net Amount (INR)", "Mode"]),
            h(&["Name", "Account No", "IFSC", "Net Salary (Rupees)", "Mode"]),
        ] {
            let c = Columns::map(&header, true).unwrap_or_else(|e| panic!("{header:?}: {e}"));
            for (i, field) in [Field::Name, Field::Account, Field::Ifsc, Field::Amount, Field::Mode].iter().enumerate()
            {
                assert_eq!(c.of(*field), Some(i), "{header:?}: {field:?}");
            }
        }
        // A currency word alone, or after a heading that is no amount alias, is no amount.
        for heading in ["INR", "Rs", "Gross Amount (INR)", "Bonus (Rs)"] {
            assert!(Columns::map(&h(&["Name", "Account", "IFSC", heading, "Mode"]), true).is_err(), "{heading}");
        }
        // Two amount candidates are still refused, a currency word or not.
        let err = Columns::map(&h(&["Name", "Account", "IFSC", "Amount", "Net Pay (INR)", "Mode"]), true)
            .err()
            .expect("ambiguous");
        assert!(err.to_string().contains("'Amount' and 'Net Pay (INR)'"), "{err}");
    }

    #[test]
    fn help_lists_every_alias_wrapped() {
        let text = help(80);
        for field in Field::ALL {
            assert!(text.contains(field.label()), "{}", field.label());
            for alias in field.aliases() {
                assert!(text.contains(alias), "{alias} missing from the help");
            }
        }
        assert!(text.lines().all(|l| l.len() <= 80), "{text}");
        assert!(text.contains("transfer mode (required unless --mode-auto"));
    }

    #[test]
    fn missing_columns_are_named() {
        let err = Columns::map(&h(&["Name", "Amount", "Mode"]), true).err().expect("error");
        let msg = err.to_string();
        assert!(msg.contains("account number") && msg.contains("IFSC"), "{msg}");
        assert!(Columns::map(&h(&["Name", "Account", "IFSC", "Amount"]), false).is_ok());
        assert!(Columns::map(&h(&["Name", "Account", "IFSC", "Amount"]), true).is_err());
    }

    #[test]
    fn two_candidates_for_the_amount_are_an_error() {
        let err =
            Columns::map(&h(&["Name", "Account", "IFSC", "Amount", "Net Pay", "Mode"]), true).err().expect("error");
        assert!(err.to_string().contains("'Amount' and 'Net Pay'"), "{err}");
        assert!(Columns::map(&h(&["Name", "Account No", "Account Number", "IFSC", "Amount", "Mode"]), true).is_err());
    }

    #[test]
    fn two_candidates_prefer_the_bank_name_and_keep_the_other() {
        let c = Columns::map(&h(&["Employee Name", "Beneficiary Name", "Account", "IFSC", "Amount", "Mode"]), true)
            .expect("maps");
        assert_eq!(c.of(Field::Name), Some(1));
        assert_eq!(c.notes.len(), 1);
    }
}
