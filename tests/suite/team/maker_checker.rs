//! Who may release money (SPEC 8.2, issue 18), with login roles made for each test. What is refused
//! is refused by the database: each refusal is shown through payrun and again through raw SQL on
//! the wrong role's own connection, asserting the database's own words (the triggers and grants of
//! `journal::team::roles`), so a modified client or `psql` gets no further than payrun does.

use payrun::journal::store::Store;
use payrun::vals;

use super::{Backend, Office, Person, awaiting, batch_of, nobody_twice, pay, payrun_as, payrun_cmd, store};
use crate::support::work::{exec, s, status_count, unwrapped};

/// An approval of `batch` as raw SQL, naming `checker` (the database makes it the session's role).
fn insert_approval(o: &Office, p: &Person, batch: &str, checker: &str) -> String {
    let mut c = o.team().connect_as(p);
    c.execute(
        "INSERT INTO approvals (batch_id, checker, at, rows_hash, totals, reason) VALUES ($1, $2, $3, $4, $5, $6)",
        &vals![batch, checker, "2030-01-01T00:00:00Z", "x", "{}", "approved by hand"],
    )
    .map(|n| panic!("{} approved batch {batch} by raw SQL ({n} row)", p.role))
    .unwrap_err()
    .to_string()
}

/// The number of approvals of `batch`.
fn approvals(o: &Office, batch: &str) -> i64 {
    let rows = o.team().owner().query("SELECT COUNT(*) AS n FROM approvals WHERE batch_id = $1", &vals![batch]);
    rows.expect("count")[0].get("n").expect("n")
}

/// `payrun ARGS --state S` as `p`.
fn as_person(o: &Office, p: &Person, args: &[&str]) -> crate::support::work::Out {
    payrun_as(&o.w, Some(&p.url), Some("S"), args)
}

const TWO_ROWS: &str = "Name,Account Number,IFSC,Amount,Mode\nAsha,570000000031,HDFC0000003,45000.00,NEFT\nRavi,570000000032,SBIN0000001,52000.00,NEFT\n";

#[test]
fn a_maker_cannot_approve_their_own_batch() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let batch = store(&o, &o.file("own.csv", TWO_ROWS));
    // A maker is not a checker: no grant to approve anything, through payrun or psql.
    let own = o.maker(&["approve", &batch, "--batch", "--reason", "looks fine to me"]);
    assert_ne!(own.code, Some(0), "{}", own.stderr);
    assert!(own.stderr.contains("permission denied for table approvals"), "{}", own.stderr);
    let e = insert_approval(&o, &t.maker, &batch, &t.checker.role);
    assert!(e.contains("permission denied for table approvals"), "{e}");
    // A small team's maker who is also a checker: the database refuses their own batch, whatever
    // checker the statement names.
    let both = t.person("makerchecker", &["payrun_maker", "payrun_checker"]);
    let f = o.file("both.csv", &TWO_ROWS.replace("5700", "5701"));
    let stored = as_person(&o, &both, &["run", &s(&f), "--gateway", &o.fake.url]);
    let theirs = awaiting(&stored).unwrap_or_else(|| panic!("stored: {}", stored.stderr));
    let own = as_person(&o, &both, &["approve", &theirs, "--batch", "--reason", "mine, and fine"]);
    assert_ne!(own.code, Some(0), "{}", own.stderr);
    let words = format!("{} stored batch {theirs} and cannot approve it: another checker must", both.role);
    assert!(own.stderr.contains(&words), "{words:?} in:\n{}", own.stderr);
    let e = insert_approval(&o, &both, &theirs, &t.checker.role);
    assert!(e.contains(&words), "{e}");
    assert_eq!((approvals(&o, &batch), approvals(&o, &theirs)), (0, 0));
    // So neither is sent.
    for b in [&batch, &theirs] {
        let out = o.sender(&["resume", b, "--yes"]);
        out.expect_code(2, "awaiting approval");
        assert!(out.stderr.contains("AWAITING_APPROVAL"), "{}", out.stderr);
    }
    assert_eq!(o.fake.timeline().requests, 0, "not one request to the gateway");
    // Another checker may.
    o.checker(&["approve", &theirs, "--batch", "--reason", "checked"]).expect_code(0, "another checker approves");
}

#[test]
fn a_senders_resume_of_an_unapproved_batch_sends_nothing() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let batch = store(&o, &o.file("unapproved.csv", TWO_ROWS));
    let out = o.sender(&["resume", &batch, "--yes", "--json"]);
    out.expect_code(2, "waits for a checker");
    assert!(out.stderr.contains(&format!("batch {batch} is stored and AWAITING_APPROVAL")), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("payrun approve {batch} --batch")), "{}", out.stderr);
    // A script reading --json learns the same from one document.
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document on stdout");
    assert_eq!(doc, serde_json::json!({"batch": batch, "stop": "awaiting_approval", "exit": 2}));
    assert_eq!(o.fake.timeline().requests, 0, "not one request to the gateway, not even for a token");
    assert!(o.fake.ledger().is_empty());
    // The sender's own connection, claiming a row as a modified client would: refused by the
    // database, even holding the batch's lease.
    let mut c = t.connect_as(&t.sender);
    let claim = "UPDATE rows SET state = 'sending' WHERE batch_id = $1";
    let e = c.execute(claim, &vals![&batch]).expect_err("claim refused").to_string();
    let words = format!("batch {batch} is not approved as its policy requires");
    assert!(e.contains(&words), "{e}");
    c.execute(
        "INSERT INTO leases (batch_id, token, holder, host, pid, since, expires_at)
         VALUES ($1, 'forged', current_user, 'psql', 1, now(), now() + interval '1 hour')",
        &vals![&batch],
    )
    .expect("a sender may take a lease");
    c.query("SELECT set_config('payrun.lease', 'forged', false) AS x", &[]).expect("set the token");
    let e = c.execute(claim, &vals![&batch]).expect_err("claim refused with a lease").to_string();
    assert!(e.contains(&words), "{e}");
    // A maker is no sender at all.
    let e = t.connect_as(&t.maker).execute(claim, &vals![&batch]).expect_err("maker").to_string();
    assert!(e.contains(&format!("only a sender (payrun_sender) may send a row; {} is not one", t.maker.role)), "{e}");
    assert!(t.row_states(&batch).values().all(|(state, _)| state == "ready"), "{:?}", t.row_states(&batch));
}

#[test]
fn a_large_batch_is_sent_only_after_a_second_distinct_checker() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let checker2 = t.person("checker", &["payrun_checker"]);
    let owner = t.db.url();
    let set =
        payrun_as(&o.w, Some(&owner), None, &["policy", "set", "--rule", "total>=1000000:2", "--rule", "total>0:1"]);
    set.expect_code(0, "the owner sets the policy");
    let shown = o.maker(&["policy", "show"]);
    shown.expect_code(0, "anyone reads it");
    assert!(shown.stderr.contains("a batch total of ₹10,00,000.00 or more needs 2 checkers"), "{}", shown.stderr);
    let refused = o.maker(&["policy", "set", "--rule", "total>0:1"]);
    assert_ne!(refused.code, Some(0), "only the owner sets the policy: {}", refused.stderr);
    // ₹20 lakh: two checkers.
    let mut text = String::from("Name,Account Number,IFSC,Amount,Mode\n");
    for i in 1..=4 {
        text.push_str(&format!("Vendor {i},58000000003{i},HDFC0000003,500000.00,RTGS\n"));
    }
    let batch = store(&o, &o.file("vendors.csv", &text));
    let first = o.checker(&["approve", &batch, "--batch", "--reason", "invoices matched"]);
    first.expect_code(0, "first approval");
    assert!(first.stderr.contains("(1 of 2 required): it waits for another checker"), "{}", first.stderr);
    let early = o.sender(&["resume", &batch, "--yes"]);
    early.expect_code(2, "waits");
    assert!(early.stderr.contains("approved by 1 of the 2 checkers its policy requires"), "{}", early.stderr);
    assert_eq!(o.fake.timeline().requests, 0, "nothing sent after one approval");
    // The same checker twice counts once: the database says so.
    let twice = o.checker(&["approve", &batch, "--batch", "--reason", "really matched"]);
    assert_ne!(twice.code, Some(0), "{}", twice.stderr);
    let words = format!("{} already approved batch {batch}: the same checker counts once", t.checker.role);
    assert!(twice.stderr.contains(&words), "{words:?} in:\n{}", twice.stderr);
    assert_eq!(approvals(&o, &batch), 1);
    let second = as_person(&o, &checker2, &["approve", &batch, "--batch", "--reason", "second pair of eyes"]);
    second.expect_code(0, "second approval");
    assert!(second.stderr.contains("(2 of 2 required): a sender sends it with:"), "{}", second.stderr);
    // The approvals are the checkers'; the money is the sender's to confirm (SPEC 3.2c).
    let unconfirmed = o.sender(&["resume", &batch]);
    unconfirmed.expect_code(1, "not confirmed by the sender");
    assert!(unconfirmed.stderr.contains("4 rows, ₹20,00,000.00"), "{}", unconfirmed.stderr);
    assert!(o.fake.ledger().is_empty(), "nothing sent unconfirmed");
    let sent = o.sender(&["resume", &batch, "--yes", "--json", "--poll-timeout", "20s"]);
    sent.expect_code(0, "sent");
    assert_eq!(status_count(&sent.json(), "SUCCESS"), 4, "{}", sent.stderr);
    assert_eq!(nobody_twice(&o.fake), 4);
}

#[test]
fn a_row_released_after_the_approval_is_sent_only_on_its_own_confirmation() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    pay(&o, &o.file("nov.csv", TWO_ROWS), &[]).expect_code(0, "November");
    // Ravi again (another amount), and Mira: Ravi held; the batch approved and sent without him.
    let dec = "Name,Account Number,IFSC,Amount,Mode\nRavi,570000000032,SBIN0000001,52500.00,NEFT\nMira,570000000033,ICIC0000001,48000.00,NEFT\n";
    let out = pay(&o, &o.file("dec.csv", dec), &[]);
    out.expect_code(2, "Ravi held");
    let batch = batch_of(&out);
    assert_eq!(status_count(&out.json(), "HELD"), 1);
    // The checker releases him after the batch's approval: not covered by the confirmation given.
    o.checker(&["approve", &batch, "--rows", "2", "--reason", "December arrears, agreed"]).expect_code(0, "release");
    let unconfirmed = o.sender(&["resume", &batch]);
    unconfirmed.expect_code(1, "asks again, and without a terminal refuses");
    assert!(
        unconfirmed.stderr.contains("1 row not confirmed before (released since), ₹52,500.00"),
        "{}",
        unconfirmed.stderr
    );
    assert_eq!(o.fake.paid_per_account().get("570000000032"), Some(&1), "nothing of that row sent");
    let wrong = o.sender(&["resume", &batch, "--confirm-total", "100500.00"]);
    wrong.expect_code(1, "a total that is not the released row's");
    assert_eq!(o.fake.paid_per_account().get("570000000032"), Some(&1));
    let paid = o.sender(&["resume", &batch, "--confirm-total", "52500.00", "--json"]);
    paid.expect_code(0, "confirmed with its total");
    assert_eq!(o.fake.paid_per_account().get("570000000032"), Some(&2));
    // The log verifies, and the row's story names who did what: the checker's approval of the
    // batch and release of the row, the sender's confirmation and payout request.
    o.maker(&["audit", &batch, "--verify"]).expect_code(0, "verifies");
    let story = o.maker(&["audit", &batch, "--row", "2"]);
    story.expect_code(0, "story");
    // Words as printed, whatever the wrapping.
    let text = story.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    let (checker, sender) = (&t.checker.role, &t.sender.role);
    for words in [
        format!("approve --batch by {checker}"),
        format!("by {checker}: December arrears, agreed"),
        format!("confirm by {sender}"),
        format!("→ payout request, attempt 1, ₹52500.00 by {sender}"),
    ] {
        assert!(text.contains(&words), "{words:?} in:\n{text}");
    }
}

#[test]
fn a_held_row_is_released_only_by_a_checker() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    pay(&o, &o.file("nov.csv", TWO_ROWS), &[]).expect_code(0, "November");
    let dec = "Name,Account Number,IFSC,Amount,Mode\nRavi,570000000032,SBIN0000001,52500.00,NEFT\nMira,570000000033,ICIC0000001,48000.00,NEFT\n";
    let batch = store(&o, &o.file("dec.csv", dec));
    assert_eq!(t.row_states(&batch)[&2].0, "held");
    let release = "UPDATE rows SET state = 'ready', code = NULL, message = NULL WHERE batch_id = $1 AND line = 2";
    for p in [&t.maker, &t.sender] {
        let e = t.connect_as(p).execute(release, &vals![&batch]).expect_err("refused").to_string();
        let words = format!("a held row is released only by a checker (payrun_checker); {} is not one", p.role);
        assert!(e.contains(&words), "{}: {e}", p.role);
    }
    let by_maker = o.maker(&["approve", &batch, "--rows", "2", "--reason", "my own release"]);
    assert_ne!(by_maker.code, Some(0), "{}", by_maker.stderr);
    assert!(by_maker.stderr.contains("released only by a checker"), "{}", by_maker.stderr);
    assert_eq!(t.row_states(&batch)[&2], ("held".to_string(), Some("REPEAT_PAYMENT".to_string())));
    o.checker(&["approve", &batch, "--rows", "2", "--reason", "agreed"]).expect_code(0, "a checker may");
    assert_eq!(t.row_states(&batch)[&2].0, "ready");
}

#[test]
fn another_operators_name_is_refused_in_team_mode() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let f = o.file("named.csv", TWO_ROWS);
    let fs = s(&f);
    let run = ["run", fs.as_str(), "--gateway", o.fake.url.as_str()];
    let mut flag: Vec<&str> = run.to_vec();
    flag.extend(["--operator", "someone-else"]);
    let by_flag = o.maker(&flag);
    by_flag.expect_code(1, "--operator naming someone else");
    let words = format!(
        "--operator / PAYRUN_OPERATOR names someone-else, but in team mode the operator is the database role that signed in: {}",
        t.maker.role
    );
    assert!(by_flag.stderr.contains(&words), "{}", by_flag.stderr);
    let mut c = payrun_cmd(&o.w, Some(&t.maker.url), Some("S"), &run);
    c.env("PAYRUN_OPERATOR", "someone-else");
    let by_env = exec(c);
    by_env.expect_code(1, "PAYRUN_OPERATOR naming someone else");
    assert!(unwrapped(&by_env.stderr).contains(&words), "{}", by_env.stderr);
    let stored: i64 = t.owner().query("SELECT COUNT(*) AS n FROM batches", &[]).expect("count")[0].get("n").expect("n");
    assert_eq!(stored, 0, "nothing stored under a name that is not the role");
    // Naming the role itself is fine.
    let mut c = payrun_cmd(&o.w, Some(&t.maker.url), Some("S"), &run);
    c.env("PAYRUN_OPERATOR", &t.maker.role);
    let own = exec(c);
    assert!(awaiting(&own).is_some(), "{}", own.stderr);
    let maker: Option<String> = t.text("SELECT maker FROM batches");
    assert_eq!(maker.as_deref(), Some(t.maker.role.as_str()));
}

#[test]
fn a_rejected_batch_is_never_sent() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let batch = store(&o, &o.file("rejected.csv", TWO_ROWS));
    // Rejecting is a checker's: the maker has no grant.
    let by_maker = o.maker(&["reject", &batch, "--reason", "never mind"]);
    assert_ne!(by_maker.code, Some(0), "{}", by_maker.stderr);
    assert!(by_maker.stderr.contains("permission denied"), "{}", by_maker.stderr);
    let rejected = o.checker(&["reject", &batch, "--reason", "wrong month's rates"]);
    rejected.expect_code(0, "reject");
    assert!(
        rejected.stderr.contains(&format!("batch {batch} rejected by {}: 2 rows will never be sent", t.checker.role))
    );
    assert!(o.report(&batch).iter().all(|r| r["status"] == "CANCELLED"));
    // No approval after it, by payrun or by hand; no send.
    let late = o.checker(&["approve", &batch, "--batch", "--reason", "changed my mind"]);
    assert_ne!(late.code, Some(0), "{}", late.stderr);
    assert!(late.stderr.contains(&format!("batch {batch} was rejected or cancelled")), "{}", late.stderr);
    let e = insert_approval(&o, &t.checker, &batch, &t.checker.role);
    assert!(e.contains(&format!("batch {batch} was rejected or cancelled")), "{e}");
    let out = o.sender(&["resume", &batch, "--yes"]);
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(o.fake.timeline().requests, 0, "not one request");
    // Its rows hold nobody: the same payees in another batch are not held.
    let again = pay(&o, &o.file("corrected.csv", &TWO_ROWS.replace("45000.00", "46000.00")), &[]);
    again.expect_code(0, "paid");
    assert_eq!(nobody_twice(&o.fake), 2);
}

/// The commands payrun prints for the next person (SPEC 1: "the whole command") name the database
/// without anyone's user name: each person pastes them and signs in as themselves (`PGUSER`,
/// `PGPASSWORD`), the checker to approve, the sender to send.
#[test]
fn the_printed_commands_work_for_the_next_person() {
    let o = Office::new(Backend::Postgres);
    let t = o.team();
    let f = o.file("printed.csv", TWO_ROWS);
    let stored = o.maker(&["run", &s(&f), "--gateway", &o.fake.url]);
    let batch = awaiting(&stored).unwrap_or_else(|| panic!("{}", stored.stderr));
    // The raw stderr: commands are printed on lines of their own, continued with ` \`.
    let raw = exec(payrun_cmd(&o.w, Some(&t.maker.url), Some("S"), &["run", &s(&f), "--gateway", &o.fake.url]));
    let approve = printed(&raw.stderr, "payrun approve ");
    let resume = printed(&raw.stderr, "payrun resume ");
    assert!(!approve.contains(&t.maker.role) && !approve.contains("password"), "{approve}");
    assert!(
        approve.starts_with(&format!("payrun approve {batch} --batch --reason '...' --state S --journal ")),
        "{approve}"
    );
    let paste = |p: &Person, command: &str| {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", &command.replacen("payrun", crate::support::BIN, 1)])
            .current_dir(o.path())
            .env("PAYRUN_CONFIG", o.path().join("payrun.toml"))
            .env("PGUSER", &p.role)
            .env("PGPASSWORD", &p.password)
            .env_remove("PAYRUN_OPERATOR")
            .env_remove("PAYRUN_JOURNAL")
            .envs(crate::support::EXAMPLE_CREDS);
        exec(c)
    };
    paste(&t.checker, &approve.replace("'...'", "'totals checked'")).expect_code(0, "the checker pastes the command");
    let sent = paste(&t.sender, &format!("{resume} --yes"));
    sent.expect_code(0, "the sender pastes the command");
    assert_eq!(nobody_twice(&o.fake), 2);
}

/// The first command printed that starts with `prefix`, its continuation lines joined.
fn printed(stderr: &str, prefix: &str) -> String {
    let mut lines = stderr.lines().skip_while(|l| !l.trim_start().starts_with(prefix));
    let mut command = String::new();
    for l in lines.by_ref() {
        let l = l.trim();
        match l.strip_suffix(" \\") {
            Some(part) => {
                command.push_str(part);
                command.push(' ');
            }
            None => {
                command.push_str(l);
                break;
            }
        }
    }
    assert!(!command.is_empty(), "no command {prefix:?} in:\n{stderr}");
    command
}
