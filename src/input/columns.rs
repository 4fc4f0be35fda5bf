//! Matching a file's header to payrun's fields (SPEC section 2).
//!
//! Headings are compared after keeping only their letters and digits, lower-cased: so `Account No.`,
//! `account_no` and `ACCOUNT-NO` are one heading, and `Amount (₹)` is `amount`. (SPEC asks to ignore
//! case, spaces, `_` and `-`; dropping all punctuation is a superset that also covers `A/c No.` and
//! `Amount (INR)`.) When two columns could be the same field, the heading earlier in the alias list
//! wins and the other is kept as an unknown column, with a note, rather than guessing silently.

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
}

impl Field {
    pub const ALL: [Field; 11] = [
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
        }
    }

    /// Accepted headings, normalised, best first. The gateway's own field names are included.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Name => &[
                "beneficiaryname",
                "nameasperbank",
                "accountholdername",
                "bankaccountname",
                "benename",
                "payeename",
                "name",
                "beneficiary",
                "payee",
                "accountname",
                "accountholder",
                "holdername",
                "employeename",
                "vendorname",
                "customername",
                "fullname",
            ],
            Field::Account => &[
                "accountnumber",
                "beneficiaryaccountnumber",
                "bankaccountnumber",
                "accountno",
                "beneficiaryaccountno",
                "bankaccountno",
                "beneaccountno",
                "beneaccountnumber",
                "accno",
                "acno",
                "acctno",
                "acnumber",
                "accountnum",
                "bankaccount",
                "beneficiaryaccount",
                "account",
            ],
            Field::Ifsc => &[
                "bankifsc",
                "ifsc",
                "ifsccode",
                "bankifsccode",
                "beneficiaryifsc",
                "beneficiaryifsccode",
                "beneifsc",
                "ifscno",
            ],
            Field::Amount => &[
                "amount",
                "amountinr",
                "amountrs",
                "amt",
                "payamount",
                "paymentamount",
                "payoutamount",
                "transferamount",
                "netpay",
                "netamount",
                "netsalary",
                "amountpayable",
                "amounttobepaid",
            ],
            Field::Mode => &[
                "transfermode",
                "mode",
                "paymentmode",
                "transfertype",
                "modeofpayment",
                "paymenttype",
                "txnmode",
                "paymentmethod",
            ],
            Field::Remarks => &[
                "remarks",
                "remark",
                "narration",
                "description",
                "purpose",
                "paymentremarks",
                "notes",
                "note",
                "comments",
                "comment",
            ],
            Field::Reference => &[
                "externalref",
                "externalreference",
                "reference",
                "referenceno",
                "referencenumber",
                "refno",
                "ref",
                "paymentreference",
                "paymentref",
                "txnref",
                "transactionref",
                "transactionreference",
            ],
            Field::PayeeListId => &["payeelistid", "payeelist"],
            Field::Email => &["email", "emailid", "emailaddress", "mail"],
            Field::Phone => &[
                "phone",
                "phoneno",
                "phonenumber",
                "mobile",
                "mobileno",
                "mobilenumber",
                "contact",
                "contactno",
                "contactnumber",
            ],
            Field::PayeeId => &[
                "payeeid",
                "employeeid",
                "empid",
                "employeecode",
                "empcode",
                "employeeno",
                "employeenumber",
                "empno",
                "staffid",
                "staffcode",
                "vendorcode",
                "vendorid",
                "vendorno",
                "suppliercode",
                "supplierid",
                "beneficiaryid",
                "beneficiarycode",
                "beneid",
                "payeecode",
            ],
        }
    }
}

/// A heading normalised for matching: letters and digits only, lower case.
pub fn normalise(heading: &str) -> String {
    heading.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Where each field is in the file.
#[derive(Clone, Debug)]
pub struct Columns {
    /// The header as written (trimmed).
    pub header: Vec<String>,
    index: [Option<usize>; 11],
    /// Notes about the mapping worth telling the operator (a column passed over).
    pub notes: Vec<String>,
}

impl Columns {
    /// Maps a header. `mode_required` is false with `--mode-auto` or a configured default mode.
    pub fn map(header: &[String], mode_required: bool) -> Result<Columns, InputError> {
        let norm: Vec<String> = header.iter().map(|h| normalise(h)).collect();
        let mut index = [None; 11];
        let mut taken = vec![false; header.len()];
        let mut notes = Vec::new();
        for (fi, field) in Field::ALL.iter().enumerate() {
            let mut candidates: Vec<(usize, usize)> = Vec::new(); // (alias rank, column)
            for (col, n) in norm.iter().enumerate() {
                if taken[col] {
                    continue;
                }
                if let Some(rank) = field.aliases().iter().position(|a| a == n) {
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
                header: header.to_vec(),
                mode: missing.contains(&Field::Mode),
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
