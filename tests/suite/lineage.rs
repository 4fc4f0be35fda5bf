//! Retry lineage under an operator's hand (SPEC 3.2b), found by an adversarial review: a `retry_of`
//! relinked to the retry row that paid, and the INVALID row of a retry batch exported again, each
//! paid a line twice, judged by the fake gateway's ledger (`support::fake`). A `retry_of` naming a
//! line the journal has now means that line's own obligation (`Journal::obligation_named`), for
//! valid and invalid rows alike. Each test failed before that; its doc gives the sequence.

use std::path::Path;

use crate::proof::{batch_of, file, payrun, result_of};
use crate::support::fake::FakeGateway;
use crate::support::work::{Out, Work, read_csv, s, status_count};

/// `payrun run FILE --gateway URL --yes --json --poll-timeout 20s` at clock offset `clock`.
fn run_at(w: &Work, file: &Path, fake: &FakeGateway, clock: Option<&str>) -> Out {
    let file = s(file);
    payrun(
        w,
        &["run", file.as_str(), "--gateway", fake.url.as_str(), "--yes", "--json", "--poll-timeout", "20s"],
        clock,
    )
}

const ASHA: &str = "510000077031";
const RAVI: &str = "510000077032";

/// December's file: Asha bounces at her bank, Ravi is paid. `failed` writes the retry file
/// (`retry_of` = December's line 2), the retry pays Asha. Returns (work, December's batch, the
/// retry batch, the retry file's text).
fn asha_bounced_then_paid_by_a_retry(fake: &FakeGateway) -> (Work, String, String, String) {
    let w = Work::new();
    let dec = format!(
        "Name,Employee ID,Account Number,IFSC,Amount,Mode\nAsha,E1,{ASHA},HDFC0000003,45000.00,NEFT\nRavi,E2,{RAVI},SBIN0000001,52000.00,NEFT\n"
    );
    fake.fail_next(ASHA);
    let first = run_at(&w, &file(&w, "december.csv", &dec), fake, None);
    first.expect_code(2, "Asha bounced");
    let batch = batch_of(&first);
    assert_eq!(status_count(&first.json(), "FAILED"), 1, "{}", first.stderr);
    payrun(&w, &["failed", &batch, "--out", "retry.csv"], None).expect_code(0, "failed");
    let (header, rows) = read_csv(&w.path().join("retry.csv"));
    assert_eq!(header.last().map(String::as_str), Some("retry_of"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].last().map(String::as_str), Some(format!("{batch}:2").as_str()));
    let retry = run_at(&w, &w.path().join("retry.csv"), fake, None);
    retry.expect_code(0, "the retry pays Asha");
    let retry_batch = batch_of(&retry);
    assert_eq!(status_count(&retry.json(), "SUCCESS"), 1, "{}", retry.stderr);
    assert_eq!(fake.credited_per_account().get(ASHA), Some(&1), "Asha paid once so far");
    let text = std::fs::read_to_string(w.path().join("retry.csv")).expect("retry.csv");
    (w, batch, retry_batch, text)
}

/// A retry file whose `retry_of` names the retry batch's line that paid the obligation (`<retry
/// batch>:2`, a well-formed `<batch id>:<line>`, e.g. written by hand from `payrun status` of the
/// retry batch) instead of the original's. SPEC 3.2b: a row whose *origin's obligation* is already
/// paid (a linked row SUCCESS) is held `ALREADY_RETRIED`, with no time limit and whatever the
/// amount; only `approve --rows` releases it. Here the origin is the retry row, its obligation
/// December's line 2, paid by that very row. Run two days later with the amount corrected, the row
/// must be held; on main it is sent and Asha is credited twice with nobody approving anything.
#[test]
fn a_retry_of_the_retry_row_that_paid_is_held_already_retried() {
    let fake = FakeGateway::start();
    let (w, december, retry_batch, text) = asha_bounced_then_paid_by_a_retry(&fake);
    let relinked = text.replace(&format!("{december}:2"), &format!("{retry_batch}:2")).replace("45000.00", "45000.50");
    assert_ne!(relinked, text);
    let g = file(&w, "retry-again.csv", &relinked);
    // validate with the journal already says what run will do.
    let preview = payrun(&w, &["validate", &s(&g)], Some("2d"));
    let again = run_at(&w, &g, &fake, Some("2d"));
    let credited = fake.credited_per_account();
    assert_eq!(
        credited.get(ASHA),
        Some(&1),
        "Asha's December line paid twice with no approval naming it\nvalidate: {}\nrun: {}\n{}\nledger: {:?}",
        preview.stdout,
        again.stdout,
        again.stderr,
        fake.ledger()
    );
    again.expect_code(2, "held");
    let rows = result_of(&w, &again);
    assert!(rows.iter().all(|r| r["status"] == "HELD" && r["code"] == "ALREADY_RETRIED"), "{rows:?}");
}

/// The same relinked retry file (amount corrected) run the same day: the 24-hour rule of 3.2
/// holds it, but as `REPEAT_PAYMENT`, which `approve --all-held` releases without naming the line
/// (SPEC 3.2: `--all-held` releases REPEAT_PAYMENT rows only; 3.2b: an obligation already paid is
/// `ALREADY_RETRIED`, released only by `approve --rows` naming it). On main `--all-held` releases
/// it and `resume` pays Asha a second time.
#[test]
fn a_retry_of_the_retry_row_that_paid_is_not_released_by_all_held() {
    let fake = FakeGateway::start();
    let (w, december, retry_batch, text) = asha_bounced_then_paid_by_a_retry(&fake);
    // The amount corrected (the same rows would be refused as "the same rows as batch ...").
    let relinked = text.replace(&format!("{december}:2"), &format!("{retry_batch}:2")).replace("45000.00", "45000.50");
    let g = file(&w, "retry-again.csv", &relinked);
    let again = run_at(&w, &g, &fake, None);
    again.expect_code(2, "held");
    let held_batch = batch_of(&again);
    let rows = result_of(&w, &again);
    let codes: Vec<&str> = rows.iter().map(|r| r["code"].as_str()).collect();
    let all = payrun(&w, &["approve", &held_batch, "--all-held", "--reason", "month end"], None);
    let resumed = payrun(&w, &["resume", &held_batch, "--json", "--yes", "--poll-timeout", "20s"], None);
    assert_eq!(
        fake.credited_per_account().get(ASHA),
        Some(&1),
        "paid twice after --all-held (codes when held: {codes:?})\napprove: {}\nresume: {}\nledger: {:?}",
        all.stderr,
        resumed.stderr,
        fake.ledger()
    );
    assert_eq!(codes, vec!["ALREADY_RETRIED"]);
}

/// `payrun run FILE --gateway URL --yes --json --poll-timeout 20s EXTRA...` at clock offset `clock`.
fn run_with(w: &Work, file: &Path, fake: &FakeGateway, extra: &[&str], clock: Option<&str>) -> Out {
    let file = s(file);
    let mut args =
        vec!["run", file.as_str(), "--gateway", fake.url.as_str(), "--yes", "--json", "--poll-timeout", "20s"];
    args.extend_from_slice(extra);
    payrun(w, &args, clock)
}

const RAVI2: &str = "510000078032";
const KIRAN: &str = "510000078033";

/// An INVALID row of a retry batch keeps its original's obligation (SPEC 3.2b: `failed` writes
/// "for a row of a retry batch, the original's, not the retry's"; SPEC 5: INVALID rows are among
/// what `failed` exports). December: Ravi's and Kiran's IFSCs are mistyped (INVALID with
/// `--skip-invalid`). `failed` → retry1 (retry_of December:3 and :4); the operator fixes Kiran only
/// and runs it with `--skip-invalid`: Kiran paid, Ravi INVALID again. `failed` on retry1 → retry2,
/// Ravi fixed, paid. Later `failed` on December must leave Ravi out (his line is paid again, through
/// retry1's row); on main retry1's INVALID row was stored with its own obligation, so retry2's
/// `retry_of` names retry1's line, December's line 3 looks unpaid, is exported a second time, and
/// the third retry file, run two days later with Ravi's amount corrected (outside 3.2's 24 hours,
/// another amount), pays Ravi twice with no hold at all.
#[test]
fn an_invalid_row_of_a_retry_batch_keeps_its_original_obligation() {
    let fake = FakeGateway::start();
    let w = Work::new();
    let dec = format!(
        "Name,Employee ID,Account Number,IFSC,Amount,Mode\nAsha,E1,{ASHA},HDFC0000003,45000.00,NEFT\nRavi,E2,{RAVI2},SBIN00001,52000.00,NEFT\nKiran,E3,{KIRAN},ICIC00002,61000.00,NEFT\n"
    );
    let first = run_with(&w, &file(&w, "december.csv", &dec), &fake, &["--skip-invalid"], None);
    first.expect_code(2, "two INVALID rows");
    let december = batch_of(&first);
    assert_eq!(status_count(&first.json(), "INVALID"), 2, "{}", first.stderr);
    payrun(&w, &["failed", &december, "--out", "retry1.csv"], None).expect_code(0, "failed");
    let retry1 = std::fs::read_to_string(w.path().join("retry1.csv")).expect("retry1");
    assert!(retry1.contains(&format!("{december}:3")) && retry1.contains(&format!("{december}:4")), "{retry1}");
    // Kiran fixed, Ravi forgotten.
    let r1 = file(&w, "retry1-fixed.csv", &retry1.replacen("ICIC00002,", "ICIC0000001,", 1));
    let second = run_with(&w, &r1, &fake, &["--skip-invalid"], None);
    second.expect_code(2, "Ravi still INVALID");
    let r1_batch = batch_of(&second);
    assert_eq!(status_count(&second.json(), "SUCCESS"), 1, "{}", second.stderr);
    payrun(&w, &["failed", &r1_batch, "--out", "retry2.csv"], None).expect_code(0, "failed");
    let retry2 = std::fs::read_to_string(w.path().join("retry2.csv")).expect("retry2");
    let (_, rows2) = read_csv(&w.path().join("retry2.csv"));
    let retry2_of = rows2.first().and_then(|r| r.last().cloned()).unwrap_or_default();
    let r2 = file(&w, "retry2-fixed.csv", &retry2.replacen("SBIN00001,", "SBIN0000001,", 1));
    run_with(&w, &r2, &fake, &[], None).expect_code(0, "Ravi paid");
    assert_eq!(fake.credited_per_account().get(RAVI2), Some(&1));
    // Two days later, the review: what of December is still unpaid? (Ravi's pay corrected since.)
    let later = payrun(&w, &["failed", &december, "--out", "retry3.csv"], Some("2d"));
    later.expect_code(0, "failed");
    let retry3 = std::fs::read_to_string(w.path().join("retry3.csv")).expect("retry3");
    let (_, rows3) = read_csv(&w.path().join("retry3.csv"));
    let mut third = None;
    if !rows3.is_empty() {
        let fixed = retry3.replacen("SBIN00001,52000.00,", "SBIN0000001,52500.00,", 1);
        assert_ne!(fixed, retry3);
        let r3 = file(&w, "retry3-fixed.csv", &fixed);
        third = Some(run_with(&w, &r3, &fake, &[], Some("2d")));
    }
    assert_eq!(
        fake.credited_per_account().get(RAVI2),
        Some(&1),
        "Ravi's December line paid twice\nretry2's retry_of: {retry2_of} (December is {december}, retry1 {r1_batch})\nfailed December 2 days later: {}{retry3}\nthird run: {:?}\nledger: {:?}",
        later.stderr,
        third.map(|o| o.stderr),
        fake.ledger()
    );
    assert_eq!(retry2_of, format!("{december}:3"), "retry_of of a retry batch's row is the original's");
    assert!(rows3.is_empty(), "December's lines were all paid again: {retry3}");
}
