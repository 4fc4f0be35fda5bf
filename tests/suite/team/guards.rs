//! What the database must refuse whoever asks, found by an adversarial review: a row made final
//! without proof through a role's own connection (raw SQL, as a modified client or `psql` would), a
//! row added while a checker approves, and an import that forgot a laptop's payments. Each test is
//! judged by the fake gateway's ledger (every account credited at most once unless a person
//! approved a repeat naming the row) and, where the database refuses, by its own words.

use payrun::journal::store::Store;
use payrun::vals;

use super::{Backend, Office, Who, batch_of, nobody_twice, pay, store};
use crate::support::work::{exec, s};

/// One payee whose payout the fake applies and then keeps pending (ENQ001) for as long as anyone
/// asks (account ending 09): the money may well have moved; payrun must never call it unpaid.
const SLOW: &str = "Name,Account Number,IFSC,Amount,Mode\nSlow Bank,71000000009,HDFC0000003,5000.00,IMPS\n";

/// Pays SLOW and leaves its row PENDING ENQ001 (payrun is still following it). The batch id.
fn a_pending_payout(o: &Office) -> String {
    let out = pay(o, &o.file("slow.csv", SLOW), &["--poll-timeout", "2s"]);
    out.expect_code(2, "pending");
    let batch = batch_of(&out);
    assert_eq!(o.team().row_states(&batch)[&2].0, "pending", "{}", out.stderr);
    assert_eq!(o.fake.paid_per_account().get("71000000009"), Some(&1));
    batch
}

/// What an office does in good faith with rows made FAILED: export them and pay them again. The
/// ledger judges.
fn pay_the_failed_rows_again(o: &Office, batch: &str) {
    let retry = o.path().join("retry.csv");
    o.maker(&["failed", batch, "--out", &s(&retry)]).expect_code(0, "failed rows exported");
    let again = pay(o, &retry, &["--poll-timeout", "2s"]);
    println!("retry: exit {:?}\n{}", again.code, again.stderr);
    println!("ledger: {:?}", o.fake.ledger());
    nobody_twice(&o.fake);
}

/// SPEC 3 rule 9: "unpaid" only for a row parked for a person; a PENDING ENQ001 row may yet be
/// paid. payrun's `resolve` refuses it, and so does the database when a checker's own connection
/// writes the same verdict. (Before, the trigger checked only the role: the row was FAILED,
/// `payrun failed` offered it, and the retry credited the account twice.)
#[test]
fn a_checker_cannot_find_a_pending_row_unpaid_with_raw_sql() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let batch = a_pending_payout(&o);
    // Through payrun: refused (the row may yet be paid).
    let refused = o.checker(&["resolve", &batch, "--row", "2", "--as", "unpaid", "--reason", "not on the statement"]);
    assert_ne!(refused.code, Some(0), "{}", refused.stderr);
    // Through the checker's own connection: the same verdict as a modified client writes it.
    let sql = "UPDATE rows SET state = 'failed', code = 'RESOLVED', message = 'resolved as unpaid by hand',
               completed_at = '2030-01-01T00:00:00.000Z' WHERE batch_id = $1 AND line = 2";
    let r = t.connect_as(&t.checker).execute(sql, &vals![&batch]);
    if let Err(e) = &r {
        assert!(e.to_string().contains("may yet be paid"), "the database's own words: {e}");
        assert_eq!(t.row_states(&batch)[&2].0, "pending");
        return;
    }
    println!("the database let {} make a PENDING ENQ001 row FAILED", t.checker.role);
    pay_the_failed_rows_again(&o, &batch);
}

/// SPEC 3 rule 11: CANCELLED only for a row no request ever left for, whoever asks. (Before, a
/// checker's own connection cancelled a row the gateway had, and a cancelled row no longer holds
/// other batches' rows of its payee: the payee's next payment was stored unheld and paid.)
#[test]
fn a_checker_cannot_cancel_a_row_that_was_sent_with_raw_sql() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let batch = a_pending_payout(&o);
    let sql =
        "UPDATE rows SET state = 'cancelled', message = 'cancelled by hand', completed_at = '2030-01-01T00:00:00.000Z'
               WHERE batch_id = $1 AND line = 2";
    let r = t.connect_as(&t.checker).execute(sql, &vals![&batch]);
    if let Err(e) = &r {
        assert!(e.to_string().contains("only a row never sent is cancelled"), "the database's own words: {e}");
        assert_eq!(t.row_states(&batch)[&2].0, "pending");
        return;
    }
    println!("the database let {} cancel a row the gateway has", t.checker.role);
    // The payee's corrected payment (another amount), stored the next day: nothing holds it.
    let corrected = o.file("slow-corrected.csv", &SLOW.replace("5000.00", "5100.00"));
    let out = pay(&o, &corrected, &["--poll-timeout", "2s"]);
    println!("corrected file: exit {:?}\n{}", out.code, out.stderr);
    println!("ledger: {:?}", o.fake.ledger());
    nobody_twice(&o.fake);
}

/// SPEC 8.2: "no row is added to a batch once a checker approved it", and the approval is of
/// exactly the totals the checker saw. A maker's transaction adds a row while a checker approves:
/// the approval waits for it (both lock the batch) and then fails, "changed while it was looked
/// at". (Before, the row committed beside the approval and was sent: above the policy's threshold
/// for a second checker, repeating a payee paid last week without any hold.)
#[test]
fn a_maker_cannot_add_a_row_while_a_checker_approves() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let owner = t.db.url();
    super::payrun_as(&o.w, Some(&owner), None, &["policy", "set", "--rule", "total>=1000000:2", "--rule", "total>0:1"])
        .expect_code(0, "policy");
    // Last week: Asha is paid.
    let paid = pay(
        &o,
        &o.file("week1.csv", "Name,Account Number,IFSC,Amount,Mode\nAsha,72000000031,HDFC0000003,1000.00,IMPS\n"),
        &[],
    );
    paid.expect_code(0, "week 1 paid");
    // This week: a one-row batch of ₹1,000 (one checker).
    let batch = store(
        &o,
        &o.file("week2.csv", "Name,Account Number,IFSC,Amount,Mode\nRavi,72000000032,HDFC0000003,1000.00,IMPS\n"),
    );
    // The maker's own connection adds a row (Asha again, ₹20,00,000, stored ready: no hold), its
    // transaction still open while the checker approves what payrun shows them.
    let mut m = t.connect_as(&t.maker);
    m.begin().expect("begin");
    let added = m.execute(
        "INSERT INTO rows (batch_id, seq, line, raw, name, account, ifsc, amount_paise, mode, remarks, payee_list_id,
             external_ref, state, payee, payee_id, obligation, confirmed)
         SELECT batch_id, seq + 1, line + 1, replace(replace(replace(raw, 'Ravi', 'Asha'), '72000000032', '72000000031'), '1000.00', '2000000.00'), 'Asha', '72000000031',
             ifsc, 200000000, mode, remarks, payee_list_id, external_ref || 'X', 'ready', '72000000031:HDFC', payee_id,
             batch_id || ':' || (line + 1), 0
         FROM rows WHERE batch_id = $1 AND line = 2",
        &vals![&batch],
    );
    assert_eq!(added.as_ref().ok(), Some(&1), "the maker may add a row before any approval: {added:?}");
    // The checker's approve, on another machine: it reads the totals (one row), inserts its
    // approval, then waits for the batch's evidence-log lock, which the maker's open insert holds
    // (FOR KEY SHARE against FOR UPDATE). The maker commits meanwhile.
    let cmd = o.cmd_on(Who::Checker, "B", &["approve", &batch, "--batch", "--reason", "one row, ₹1,000, checked"]);
    let checker = std::thread::spawn(move || exec(cmd));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let committed = m.execute_batch("COMMIT");
    let approved = checker.join().expect("checker thread");
    println!("approve: exit {:?}\n{}", approved.code, approved.stderr);
    if let Err(e) = &committed {
        println!("refused by the database: {e}");
        return;
    }
    if approved.code != Some(0) {
        assert!(
            crate::support::work::unwrapped(&approved.stderr).contains("changed while it was looked at"),
            "{}",
            approved.stderr
        );
        assert_eq!(
            t.text(&format!("SELECT COUNT(*)::text FROM approvals WHERE batch_id = '{batch}'")).as_deref(),
            Some("0")
        );
        return;
    }
    println!("the maker's row was committed beside the approval of one row");
    let out = super::resume(&o, "S", &batch, &[]);
    println!("resume: exit {:?}\n{}", out.code, out.stderr);
    println!("ledger: {:?}", o.fake.ledger());
    let approvals = t.text(&format!("SELECT COUNT(*)::text FROM approvals WHERE batch_id = '{batch}'"));
    assert!(
        o.fake.ledger().iter().all(|p| p.account != "72000000031" || p.amount.starts_with("1000")),
        "₹20,00,000 paid to Asha again from a batch approved by {approvals:?} checker(s) for ₹1,000"
    );
    nobody_twice(&o.fake);
}

/// SPEC 8.1: `journal import` is how "a team that started on one laptop keeps its memory of what
/// was paid". A maker stored the laptop's file in the team's database before the import (the same
/// bytes, the same batch id). The import used to skip a batch the database had, so the laptop's
/// SUCCESS rows never reached the team's journal, and the corrected file run right after (3.2 b:
/// held "whatever the amount" within 24 hours of a payment) went through once the checker rejected
/// the team's unsent copy. Now the team's unsent copy is replaced by the laptop's, which paid: the
/// corrected file is held. And a batch both sides sent rows of is not imported, for a person.
#[test]
fn a_batch_paid_on_a_laptop_is_not_forgotten_by_the_import() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let text = "Name,Account Number,IFSC,Amount,Mode\nAsha,73000000031,HDFC0000003,45000.00,NEFT\nRavi,73000000032,SBIN0000001,52000.00,NEFT\n";
    let f = o.file("november.csv", text);
    // On the laptop (SQLite, state directory L): November is paid.
    let paid = super::payrun_as(
        &o.w,
        None,
        Some("L"),
        &["run", &s(&f), "--gateway", &o.fake.url, "--yes", "--json", "--poll-timeout", "20s"],
    );
    paid.expect_code(0, "paid on the laptop");
    let laptop_batch = batch_of(&paid);
    // Meanwhile on the team database a maker stored the same file (it has never seen the laptop).
    let team_batch = store(&o, &f);
    assert_eq!(team_batch, laptop_batch, "the same bytes, the same batch id");
    o.checker(&["approve", &team_batch, "--batch", "--reason", "november checked"]).expect_code(0, "approve");
    // The owner imports the laptop's journal: the team's unsent copy is replaced by the laptop's.
    let owner = t.db.url();
    let imported = super::payrun_as(&o.w, Some(&owner), Some("L"), &["journal", "import"]);
    imported.expect_code(0, "import");
    assert!(imported.stderr.contains("replaced"), "{}", imported.stderr);
    let states = t.row_states(&team_batch);
    assert!(states.values().all(|(state, _)| state == "success"), "the laptop's payments: {states:?}");
    // Importing again changes nothing.
    super::payrun_as(&o.w, Some(&owner), Some("L"), &["journal", "import"]).expect_code(0, "import again");
    assert_eq!(t.row_states(&team_batch), states);
    // The corrected file (Ravi's amount), stored by the maker the same day: both rows held.
    let corrected = o.file("november-corrected.csv", &text.replace("52000.00", "52500.00"));
    let second = store(&o, &corrected);
    let held = t.row_states(&second);
    assert!(held.values().all(|(state, _)| state == "held"), "held as repeats of the laptop's payments: {held:?}");
    o.checker(&["approve", &second, "--batch", "--reason", "corrected file checked"]).expect_code(0, "approve");
    let out = super::resume(&o, "S", &second, &[]);
    println!("resume: exit {:?}\n{}", out.code, out.stderr);
    nobody_twice(&o.fake);
    // The same file sent from both sides: not imported, said, exit 3.
    let both = o.file("december.csv", &text.replace("7300000003", "7400000003"));
    super::payrun_as(
        &o.w,
        None,
        Some("L"),
        &["run", &s(&both), "--gateway", &o.fake.url, "--yes", "--json", "--poll-timeout", "20s"],
    )
    .expect_code(0, "paid on the laptop");
    let dec = store(&o, &both);
    o.checker(&["approve", &dec, "--batch", "--reason", "december checked"]).expect_code(0, "approve");
    super::resume(&o, "S", &dec, &[]);
    let conflict = super::payrun_as(&o.w, Some(&owner), Some("L"), &["journal", "import"]);
    conflict.expect_code(3, "a batch both sent");
    assert!(conflict.stderr.contains(&format!("batch {dec}: NOT imported")), "{}", conflict.stderr);
}

/// SPEC 3 rules 9 and 11: "unpaid" only for a row payrun parked for a person, which the trigger
/// judges by the row's code. So only a sender changes why a sent row is where it is: a checker's
/// own connection relabelling a PENDING ENQ001 row `PAYEE_MISMATCH` is refused. (Before, payrun's
/// ordinary `resolve --as unpaid` then took it as parked: FAILED without proof, paid again.)
#[test]
fn a_checker_cannot_park_a_pending_row_by_rewriting_its_code() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let batch = a_pending_payout(&o);
    let relabel = t.connect_as(&t.checker).execute(
        "UPDATE rows SET code = 'PAYEE_MISMATCH', message = 'the gateway named another account'
         WHERE batch_id = $1 AND line = 2",
        &vals![&batch],
    );
    if let Err(e) = &relabel {
        println!("refused by the database: {e}");
        assert_eq!(t.row_states(&batch)[&2], ("pending".to_string(), Some("ENQ001".to_string())));
        return;
    }
    println!("the database let {} relabel a PENDING ENQ001 row PAYEE_MISMATCH", t.checker.role);
    let found = o.checker(&["resolve", &batch, "--row", "2", "--as", "unpaid", "--reason", "not on the statement"]);
    println!("resolve: exit {:?}\n{}", found.code, found.stderr);
    if found.code != Some(0) {
        assert_ne!(t.row_states(&batch)[&2].0, "failed");
        return;
    }
    assert_eq!(t.row_states(&batch)[&2].0, "failed", "FAILED although the gateway applied it");
    pay_the_failed_rows_again(&o, &batch);
}

/// The same relabelling by the database alone: the checker's own connection relabels the PENDING
/// ENQ001 row `REF_ALREADY_USED` and then writes the "unpaid" verdict itself; refused.
#[test]
fn a_checker_cannot_make_a_row_final_after_relabelling_it_with_raw_sql() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let batch = a_pending_payout(&o);
    let mut c = t.connect_as(&t.checker);
    let r = c.execute("UPDATE rows SET code = 'REF_ALREADY_USED' WHERE batch_id = $1 AND line = 2", &vals![&batch]);
    let r = r.and_then(|_| {
        c.execute(
            "UPDATE rows SET state = 'failed', code = 'RESOLVED', message = 'resolved as unpaid by hand'
             WHERE batch_id = $1 AND line = 2",
            &vals![&batch],
        )
    });
    if let Err(e) = &r {
        println!("refused by the database: {e}");
        assert_eq!(t.row_states(&batch)[&2].0, "pending");
        return;
    }
    panic!(
        "the checker's own connection made a PENDING ENQ001 row (applied at the gateway: {:?}) FAILED: {:?}",
        o.fake.paid_per_account(),
        t.row_states(&batch)[&2]
    );
}

/// SPEC 8.2: "A small team may grant maker and sender to one person and checker to another", and
/// the database, not the client, keeps the checker's word: "a modified client cannot send an
/// unapproved batch through the journal". A maker-sender stores an `invalid` row (a second line
/// paying Ravi again: the checker is shown "1 valid of 2 rows"), and after the approval turns it
/// `ready` on their own connection: refused, a final row stays final. (Before, their ordinary
/// `resume` paid Ravi twice.)
#[test]
fn a_maker_sender_cannot_turn_an_invalid_row_ready_after_the_approval() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let ms = t.person("makersender", &["payrun_maker", "payrun_sender"]);
    let f = o.file("week.csv", "Name,Account Number,IFSC,Amount,Mode\nRavi,72000000042,HDFC0000003,1000.00,IMPS\n");
    let stored = super::payrun_as(&o.w, Some(&ms.url), Some("S"), &["run", &s(&f), "--gateway", &o.fake.url]);
    let batch = super::awaiting(&stored).unwrap_or_else(|| panic!("not awaiting approval:\n{}", stored.stderr));
    let mut m = t.connect_as(&ms);
    m.execute(
        "INSERT INTO rows (batch_id, seq, line, raw, name, account, ifsc, amount_paise, mode, remarks, payee_list_id,
             external_ref, state, code, message, payee, payee_id, obligation, confirmed)
         SELECT batch_id, seq + 1, line + 1, raw, name, account, ifsc, amount_paise, mode, remarks, payee_list_id,
             external_ref || 'X', 'invalid', 'INVALID_ACCOUNT', 'account: not a number', payee, payee_id,
             batch_id || ':' || (line + 1), 0
         FROM rows WHERE batch_id = $1 AND line = 2",
        &vals![&batch],
    )
    .expect("the maker adds an invalid row before any approval");
    m.execute("UPDATE batches SET total_rows = total_rows + 1 WHERE id = $1", &vals![&batch]).expect("total_rows");
    let approved = o.checker(&["approve", &batch, "--batch", "--reason", "one valid row, ₹1,000, checked"]);
    println!("approve (what the checker is shown): exit {:?}\n{}", approved.code, approved.stderr);
    approved.expect_code(0, "approved");
    let turned = m.execute(
        "UPDATE rows SET state = 'ready', code = NULL, message = NULL WHERE batch_id = $1 AND line = 3",
        &vals![&batch],
    );
    if let Err(e) = &turned {
        println!("refused by the database: {e}");
        return;
    }
    println!("the database let {} turn an invalid row ready after the approval", ms.role);
    let out = super::payrun_as(
        &o.w,
        Some(&ms.url),
        Some("S"),
        &["resume", &batch, "--yes", "--json", "--poll-timeout", "20s"],
    );
    println!("resume: exit {:?}\n{}", out.code, out.stderr);
    println!("ledger: {:?}", o.fake.ledger());
    nobody_twice(&o.fake);
}

/// SPEC 3.2 and 8.2: holds are computed by payrun, not by the database. A maker's own connection
/// adds a row (last week's payee, the same amount: REPEAT_PAYMENT (c) for payrun) stored `ready`,
/// and sets the batch's `total_rows` to match (a column the maker has the grant on). Before, the
/// checker was shown "2 valid rows, held 0", approved, and the sender paid the payee a second time.
/// Now the checker's `approve --batch` makes the holds again on the rows no person released, so
/// the row is held before the checker sees the totals, and not sent.
#[test]
fn a_makers_row_stored_ready_is_not_held_as_a_repeat() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    pay(
        &o,
        &o.file("week1.csv", "Name,Account Number,IFSC,Amount,Mode\nAsha,72000000031,HDFC0000003,1000.00,IMPS\n"),
        &[],
    )
    .expect_code(0, "week 1 paid");
    // This week: payrun's own `run` would hold Asha again (same payee, same amount, 20 days).
    let batch = store(
        &o,
        &o.file("week2.csv", "Name,Account Number,IFSC,Amount,Mode\nRavi,72000000032,HDFC0000003,1000.00,IMPS\n"),
    );
    let mut m = t.connect_as(&t.maker);
    let added = m.execute(
        "INSERT INTO rows (batch_id, seq, line, raw, name, account, ifsc, amount_paise, mode, remarks, payee_list_id,
             external_ref, state, payee, payee_id, obligation, confirmed)
         SELECT batch_id, seq + 1, line + 1, replace(replace(raw, 'Ravi', 'Asha'), '72000000032', '72000000031'),
             'Asha', '72000000031', ifsc, amount_paise, mode, remarks, payee_list_id, external_ref || 'X', 'ready',
             replace(payee, '72000000032', '72000000031'), payee_id, batch_id || ':' || (line + 1), 0
         FROM rows WHERE batch_id = $1 AND line = 2",
        &vals![&batch],
    );
    if let Err(e) = &added {
        println!("refused by the database: {e}");
        return;
    }
    let bumped = m.execute(
        "UPDATE batches SET total_rows = total_rows + 1, valid_rows = valid_rows + 1, valid_paise = valid_paise + 100000
         WHERE id = $1",
        &vals![&batch],
    );
    println!("batch totals updated by the maker: {bumped:?}");
    let approved = o.checker(&["approve", &batch, "--batch", "--reason", "two rows, ₹2,000, checked"]);
    println!("approve (what the checker is shown): exit {:?}\n{}", approved.code, approved.stderr);
    if approved.code != Some(0) {
        return;
    }
    let out = super::resume(&o, "S", &batch, &[]);
    println!("resume: exit {:?}\n{}", out.code, out.stderr);
    println!("ledger: {:?}", o.fake.ledger());
    nobody_twice(&o.fake);
}
