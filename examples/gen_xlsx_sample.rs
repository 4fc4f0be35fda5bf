//! Writes `samples/salary-2026-11.xlsx`: the rows of `samples/salary-2026-11.csv` as an Excel
//! workbook, laid out as a payroll team would keep it. Run from anywhere in the repository:
//!
//! ```text
//! cargo run --example gen_xlsx_sample
//! ```
//!
//! Account numbers, IFSCs and every other column are text cells (an account number typed as a
//! number loses its leading zeros: payrun warns about that, `ACCOUNT_AS_NUMBER`); the amounts are
//! numbers in rupee format, as a spreadsheet adds them up. The amount text of the CSV file (Indian
//! or Western grouping, 2 decimals) is parsed straight into the number Excel stores, so payrun
//! reads each back to the same paise. The output is deterministic (fixed document date), so the
//! committed file only changes when the CSV sample does. (Python has no .xlsx writer on the
//! machines this project is built on, hence a Rust example next to `scripts/gen_samples.py`.)

use std::error::Error;
use std::path::Path;

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, FormatAlign, Workbook};

fn main() -> Result<(), Box<dyn Error>> {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut csv = csv::Reader::from_path(samples.join("salary-2026-11.csv"))?;
    let header: Vec<String> = csv.headers()?.iter().map(str::to_string).collect();
    let amount_col = header.iter().position(|h| h == "Net Pay").ok_or("the CSV sample has no 'Net Pay' column")?;

    let mut book = Workbook::new();
    book.set_properties(
        &DocProperties::new()
            .set_title("Salary November 2026")
            .set_creation_datetime(&ExcelDateTime::from_ymd(2026, 11, 25)?),
    );
    let sheet = book.add_worksheet();
    sheet.set_name("Salary Nov 2026")?;
    let bold = Format::new().set_bold().set_align(FormatAlign::Center);
    let rupees = Format::new().set_num_format("[$₹-4009] #,##0.00");
    for (col, h) in header.iter().enumerate() {
        sheet.write_string_with_format(0, col as u16, h, &bold)?;
    }
    let mut rows = 0u32;
    for rec in csv.records() {
        let rec = rec?;
        rows += 1;
        for (col, cell) in rec.iter().enumerate() {
            if col == amount_col {
                let plain = cell.replace(',', "");
                let value: f64 = plain.parse().map_err(|e| format!("row {rows}: amount '{cell}': {e}"))?;
                sheet.write_number_with_format(rows, col as u16, value, &rupees)?;
            } else {
                sheet.write_string(rows, col as u16, cell)?;
            }
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, rows, header.len() as u16 - 1)?;
    sheet.autofit();
    let out = samples.join("salary-2026-11.xlsx");
    book.save(&out)?;
    println!("wrote {} ({rows} rows)", out.display());
    Ok(())
}
