//! Maker-checker in the database (SPEC 8.2): who may release money is decided by PostgreSQL, not
//! by payrun. `journal init` creates three group roles, granted to people's login roles by the
//! database's owner:
//!
//! - `payrun_maker` stores and validates batches (and holds their rows as they are stored),
//!   exports failed rows, reads everything;
//! - `payrun_checker` approves or rejects a batch, releases held rows, cancels, resolves;
//! - `payrun_sender` drives approved batches: claims rows for sending and records the answers.
//!
//! Grants say which tables and columns each may write; triggers say which row transitions each may
//! make, and refuse them for everybody when the rule is about the batch, not the person:
//!
//! - what a row pays (account, IFSC, amount, mode, reference...) never changes once stored (the
//!   roles have no grant on those columns), and no row is added to a batch once a checker approved
//!   it;
//! - a row is claimed for sending (`→ sending`) only by a sender, only in a batch whose approvals
//!   meet the policy and that is neither rejected nor cancelled, and only by the process that holds
//!   the batch's lease (its token is the connection's `payrun.lease` setting): all checked in the
//!   statement that claims it;
//! - a held row is released only by a checker; a row is cancelled, or resolved by a person's
//!   finding, only by a checker;
//! - an approval is the checker's own (`current_user`, whatever the client says), never by the
//!   batch's maker (who is `current_user` when the batch is stored), once per checker.
//!
//! The database's owner (who runs `journal init`, `journal import` and `policy set`) may insert
//! history (an imported journal) but is held to the same claim rule as everyone. What the database
//! cannot enforce: whoever holds the gateway credentials can call the gateway directly; they belong
//! to the sender alone.

/// The roles, grants, functions and triggers of migration 1 (run after its tables), with the codes
/// of a row parked for a person from the lifecycle (one list, [`PERSON_CODES`]).
///
/// [`PERSON_CODES`]: crate::journal::lifecycle::PERSON_CODES
pub fn m1_roles() -> String {
    let codes: Vec<String> = crate::journal::lifecycle::PERSON_CODES.iter().map(|c| format!("'{c}'")).collect();
    M1_ROLES.replace("{PERSON_CODES}", &codes.join(", "))
}

const M1_ROLES: &str = r#"
DO $roles$
DECLARE r TEXT;
BEGIN
  FOREACH r IN ARRAY ARRAY['payrun_maker', 'payrun_checker', 'payrun_sender'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL; -- created by another database's init at the same moment: roles are the server's
      END;
    END IF;
  END LOOP;
END
$roles$;

GRANT SELECT ON meta, batches, rows, actions, exports, evidence, leases, rate_budget, policy_rules, approvals,
    payrun_migrations TO payrun_maker, payrun_checker, payrun_sender;
GRANT INSERT ON evidence, actions TO payrun_maker, payrun_checker, payrun_sender;
GRANT UPDATE (audit_n, audit_head, result_path, finished_at, settings) ON batches
    TO payrun_maker, payrun_checker, payrun_sender;
GRANT UPDATE (state, attempts, gateway_ref, code, message, utr, submitted_at, completed_at, updated_at, sent_at,
    order_key, confirmed) ON rows TO payrun_maker, payrun_checker, payrun_sender;
GRANT INSERT ON batches, rows, exports TO payrun_maker;
GRANT UPDATE (total_rows, valid_rows, valid_paise, rows_hash) ON batches TO payrun_maker;
GRANT INSERT ON approvals TO payrun_checker;
GRANT UPDATE (cancelled_at, rejected_at, rejected_by) ON batches TO payrun_checker;
GRANT UPDATE (confirmed_at) ON batches TO payrun_sender;
GRANT INSERT, UPDATE, DELETE ON leases TO payrun_sender, payrun_checker;
GRANT INSERT, UPDATE ON rate_budget TO payrun_sender;

-- Whether the session's role is the database's owner (or a member of it).
CREATE FUNCTION payrun_is_owner() RETURNS BOOLEAN LANGUAGE sql STABLE AS $f$
  SELECT pg_has_role(current_user, d.datdba, 'MEMBER') FROM pg_database d WHERE d.datname = current_database()
$f$;

-- The batch's total and largest valid row, counted from its rows.
CREATE FUNCTION payrun_batch_totals(b TEXT, OUT total BIGINT, OUT largest BIGINT) LANGUAGE sql STABLE AS $f$
  SELECT CAST(COALESCE(SUM(r.amount_paise), 0) AS BIGINT), COALESCE(MAX(r.amount_paise), 0)
  FROM rows r WHERE r.batch_id = b AND r.state <> 'invalid'
$f$;

-- How many distinct checkers a batch needs: the highest count of the policy's rules it meets (by its
-- total, or its largest row), one when none or no policy. Judged on the totals the database counted
-- when the batch was first approved (no row can be added after that), else on its rows now.
CREATE FUNCTION payrun_required_checkers(b TEXT) RETURNS BIGINT LANGUAGE plpgsql STABLE AS $f$
DECLARE
  t BIGINT;
  m BIGINT;
  n BIGINT;
BEGIN
  SELECT MAX(a.db_total_paise), MAX(a.db_max_paise) INTO t, m FROM approvals a WHERE a.batch_id = b;
  IF t IS NULL THEN
    SELECT x.total, x.largest INTO t, m FROM payrun_batch_totals(b) x;
  END IF;
  SELECT GREATEST(1, COALESCE(MAX(p.checkers), 1)) INTO n FROM policy_rules p
  WHERE (p.measure = 'total' AND t >= p.min_paise) OR (p.measure = 'max_row' AND m >= p.min_paise);
  RETURN n;
END
$f$;

-- Whether a batch may send: enough distinct checkers approved it, and it is neither rejected nor
-- cancelled.
CREATE FUNCTION payrun_batch_approved(b TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE AS $f$
  SELECT EXISTS (SELECT 1 FROM batches x WHERE x.id = b AND x.rejected_at IS NULL AND x.cancelled_at IS NULL)
     AND (SELECT COUNT(*) FROM approvals a WHERE a.batch_id = b) >= payrun_required_checkers(b)
$f$;

CREATE FUNCTION payrun_batches_guard() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NOT payrun_is_owner() THEN
      NEW.maker := current_user;
    END IF;
  ELSIF NEW.maker IS DISTINCT FROM OLD.maker THEN
    RAISE EXCEPTION 'payrun: the maker of batch % cannot change', OLD.id;
  END IF;
  RETURN NEW;
END
$f$;
CREATE TRIGGER payrun_batches_guard BEFORE INSERT OR UPDATE ON batches
  FOR EACH ROW EXECUTE FUNCTION payrun_batches_guard();

-- The session role's parts (sender, checker, maker), worked out once per transaction and kept in a
-- transaction-local setting: the rows trigger runs for every row a group commit writes.
CREATE FUNCTION payrun_my_roles() RETURNS TEXT LANGUAGE plpgsql AS $f$
DECLARE
  cached TEXT := current_setting('payrun.tx_roles', true);
  mine TEXT;
BEGIN
  IF cached IS NOT NULL AND cached <> '' AND split_part(cached, '|', 1) = current_user THEN
    RETURN split_part(cached, '|', 2);
  END IF;
  mine := concat_ws(',',
    CASE WHEN pg_has_role(current_user, 'payrun_sender', 'MEMBER') THEN 'sender' END,
    CASE WHEN pg_has_role(current_user, 'payrun_checker', 'MEMBER') THEN 'checker' END,
    CASE WHEN pg_has_role(current_user, 'payrun_maker', 'MEMBER') THEN 'maker' END);
  PERFORM set_config('payrun.tx_roles', current_user || '|,' || mine || ',', true);
  RETURN ',' || mine || ',';
END
$f$;

CREATE FUNCTION payrun_rows_guard() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
  mine TEXT := payrun_my_roles();
  sender BOOLEAN := position(',sender,' in mine) > 0;
  checker BOOLEAN := position(',checker,' in mine) > 0;
  maker BOOLEAN := position(',maker,' in mine) > 0;
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF payrun_is_owner() THEN
      RETURN NEW; -- history (`journal import`)
    END IF;
    IF NEW.state NOT IN ('ready', 'invalid') THEN
      RAISE EXCEPTION 'payrun: a row is stored ready or invalid, not %', NEW.state;
    END IF;
    -- The batch row locked against an approval being made at this moment (the approvals trigger
    -- locks it FOR UPDATE): a row is added either before an approval, which then counts it, or
    -- after, and is refused below.
    IF NOT EXISTS (SELECT 1 FROM batches x WHERE x.id = NEW.batch_id AND x.maker = current_user FOR SHARE) THEN
      RAISE EXCEPTION 'payrun: rows are added only by the maker of batch %', NEW.batch_id;
    END IF;
    IF EXISTS (SELECT 1 FROM approvals a WHERE a.batch_id = NEW.batch_id) THEN
      RAISE EXCEPTION 'payrun: batch % is approved: no row can be added to it', NEW.batch_id;
    END IF;
    -- A row is stored as never sent, and under the payee its account and bank make (the key the
    -- holds of 3.2 look payments up by, as payrun's `payee_key` writes it): a forged key would hide
    -- the payee's earlier payments from every later batch.
    IF NEW.attempts <> 0 OR COALESCE(NEW.gateway_ref, NEW.order_key, NEW.utr, NEW.submitted_at, NEW.sent_at,
        NEW.completed_at) IS NOT NULL THEN
      RAISE EXCEPTION 'payrun: row % of batch % is stored as never sent', NEW.line, NEW.batch_id;
    END IF;
    IF NEW.state = 'ready' AND NEW.payee IS DISTINCT FROM
        (ltrim(btrim(NEW.account), '0') || ':' || upper(left(btrim(NEW.ifsc), 4))) THEN
      RAISE EXCEPTION 'payrun: row % of batch % is stored under another payee key than its account and bank make',
        NEW.line, NEW.batch_id;
    END IF;
    IF NEW.confirmed <> 0 AND NOT EXISTS (SELECT 1 FROM batches x WHERE x.id = NEW.batch_id AND x.gateway = 'embedded') THEN
      RAISE EXCEPTION 'payrun: only a sender confirms what is sent';
    END IF;
    RETURN NEW;
  END IF;
  -- A final row stays final (SPEC 3: success, failed, invalid and cancelled are ends), whoever asks.
  IF OLD.state IN ('success', 'failed', 'invalid', 'cancelled') AND NEW.state <> OLD.state THEN
    RAISE EXCEPTION 'payrun: row % of batch % is % (final): it does not become %', OLD.line, OLD.batch_id,
      OLD.state, NEW.state;
  END IF;
  -- What a row pays (account, IFSC, amount, mode, reference, ...) never changes once it is stored:
  -- no role has a grant on those columns (only the owner, who could disable this trigger anyway).
  -- A claim: a sender, in an approved batch, holding the batch's lease. Everyone, the owner too.
  IF NEW.state = 'sending' AND OLD.state <> 'sending' THEN
    IF NOT sender THEN
      RAISE EXCEPTION 'payrun: only a sender (payrun_sender) may send a row; % is not one', current_user;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM approvals a WHERE a.batch_id = NEW.batch_id) THEN
      RAISE EXCEPTION 'payrun: batch % is not approved as its policy requires (no checker approved it yet): nothing is sent', NEW.batch_id;
    END IF;
    IF NOT payrun_batch_approved(NEW.batch_id) THEN
      RAISE EXCEPTION 'payrun: batch % is not approved as its policy requires (or was rejected or cancelled): nothing is sent', NEW.batch_id;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM leases l WHERE l.batch_id = NEW.batch_id
                   AND l.token = current_setting('payrun.lease', true) AND l.expires_at > now()) THEN
      RAISE EXCEPTION 'payrun: this process does not hold the lease of batch % (another machine drives it, or the lease expired)', NEW.batch_id;
    END IF;
    RETURN NEW;
  END IF;
  IF NEW.confirmed <> OLD.confirmed AND NEW.confirmed = 1 AND NOT sender THEN
    RAISE EXCEPTION 'payrun: only a sender confirms what is sent';
  END IF;
  -- What the gateway answered (and when) is recorded by a sender alone: a maker or a checker moving
  -- a payment's time out of the repeat windows of 3.2, or its order id, changes what holds.
  IF NOT sender AND (NEW.attempts, NEW.gateway_ref, NEW.order_key, NEW.submitted_at, NEW.sent_at)
      IS DISTINCT FROM (OLD.attempts, OLD.gateway_ref, OLD.order_key, OLD.submitted_at, OLD.sent_at) THEN
    RAISE EXCEPTION 'payrun: only a sender records what the gateway answered (row % of batch %)', OLD.line, OLD.batch_id;
  END IF;
  IF NEW.state = OLD.state THEN
    IF NOT sender AND (NEW.completed_at, NEW.utr) IS DISTINCT FROM (OLD.completed_at, OLD.utr) THEN
      RAISE EXCEPTION 'payrun: only a sender records when row % of batch % ended', OLD.line, OLD.batch_id;
    END IF;
    -- Why a row is where it is: a sender records it from the gateway's answers; a checker may
    -- only re-hold a held row for another reason. (A checker relabelling a pending row with a
    -- code of a row parked for a person could then find it unpaid.)
    IF NEW.code IS DISTINCT FROM OLD.code AND NOT sender
        AND NOT (OLD.state = 'ready' OR (OLD.state = 'held' AND checker)) THEN
      RAISE EXCEPTION 'payrun: % may not change why row % of batch % is %', current_user, OLD.line, OLD.batch_id, OLD.state;
    END IF;
    RETURN NEW;
  END IF;
  IF OLD.state = 'held' AND NEW.state = 'ready' THEN
    IF NOT checker THEN
      RAISE EXCEPTION 'payrun: a held row is released only by a checker (payrun_checker); % is not one', current_user;
    END IF;
  ELSIF OLD.state = 'ready' AND NEW.state = 'held' THEN
    IF NOT (maker OR checker) THEN
      RAISE EXCEPTION 'payrun: rows are held by a maker storing the batch or a checker';
    END IF;
  ELSIF NEW.state = 'cancelled' THEN
    IF NOT checker THEN
      RAISE EXCEPTION 'payrun: a batch is cancelled or rejected only by a checker (payrun_checker); % is not one', current_user;
    END IF;
    -- SPEC 3 rule 11: only a row no request ever left for.
    IF OLD.state NOT IN ('ready', 'held') OR OLD.attempts <> 0 THEN
      RAISE EXCEPTION 'payrun: row % of batch % was sent (%): only a row never sent is cancelled', OLD.line,
        OLD.batch_id, OLD.state;
    END IF;
  ELSIF NEW.code = 'RESOLVED' AND NEW.state IN ('success', 'failed') THEN
    IF NOT checker THEN
      RAISE EXCEPTION 'payrun: a person''s finding is recorded only by a checker (payrun_checker); % is not one', current_user;
    END IF;
    -- SPEC 3 rule 9: a finding only for a row the gateway may have; "unpaid" only for one parked
    -- for a person (payrun could not decide it by asking).
    IF OLD.state NOT IN ('accepted', 'pending', 'in_doubt') THEN
      RAISE EXCEPTION 'payrun: row % of batch % is %: no finding is recorded for it', OLD.line, OLD.batch_id, OLD.state;
    END IF;
    IF NEW.state = 'failed' AND NOT (OLD.state IN ('pending', 'in_doubt')
        AND OLD.code IN ({PERSON_CODES})) THEN
      RAISE EXCEPTION 'payrun: row % of batch % may yet be paid (% %): it is found unpaid only once payrun parks it for a person',
        OLD.line, OLD.batch_id, OLD.state, COALESCE(OLD.code, '');
    END IF;
  ELSIF checker AND NOT sender AND OLD.state = 'sending' AND NEW.state = 'in_doubt' AND NEW.code IS NULL THEN
    NULL; -- a checker's resolve or cancel finds rows a dead driver left sending: in doubt (rule 2)
  ELSIF NOT sender THEN
    RAISE EXCEPTION 'payrun: % may not move row % of batch % from % to %', current_user, OLD.line, OLD.batch_id,
      OLD.state, NEW.state;
  END IF;
  RETURN NEW;
END
$f$;
CREATE TRIGGER payrun_rows_guard BEFORE INSERT OR UPDATE ON rows
  FOR EACH ROW EXECUTE FUNCTION payrun_rows_guard();

CREATE FUNCTION payrun_approvals_guard() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE
  b RECORD;
BEGIN
  NEW.checker := current_user;
  -- Locked: a maker's row being added at this moment (the rows trigger locks the batch FOR SHARE)
  -- is either committed before this look, and counted below, or refused after it.
  SELECT * INTO b FROM batches WHERE id = NEW.batch_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'payrun: no batch %', NEW.batch_id;
  END IF;
  IF b.maker = current_user THEN
    RAISE EXCEPTION 'payrun: % stored batch % and cannot approve it: another checker must', current_user, NEW.batch_id;
  END IF;
  IF b.rejected_at IS NOT NULL OR b.cancelled_at IS NOT NULL THEN
    RAISE EXCEPTION 'payrun: batch % was rejected or cancelled', NEW.batch_id;
  END IF;
  IF EXISTS (SELECT 1 FROM approvals a WHERE a.batch_id = NEW.batch_id AND a.checker = current_user) THEN
    RAISE EXCEPTION 'payrun: % already approved batch %: the same checker counts once', current_user, NEW.batch_id;
  END IF;
  -- The batch as the checker was shown it: as many rows as it has now.
  IF (NEW.totals::jsonb ->> 'rows') IS DISTINCT FROM (SELECT COUNT(*) FROM rows r WHERE r.batch_id = NEW.batch_id)::text THEN
    RAISE EXCEPTION 'payrun: batch % changed while it was looked at (% rows shown, % now): look at its totals again',
      NEW.batch_id, COALESCE(NEW.totals::jsonb ->> 'rows', 'no count'),
      (SELECT COUNT(*) FROM rows r WHERE r.batch_id = NEW.batch_id);
  END IF;
  SELECT x.total, x.largest INTO NEW.db_total_paise, NEW.db_max_paise FROM payrun_batch_totals(NEW.batch_id) x;
  RETURN NEW;
END
$f$;
CREATE TRIGGER payrun_approvals_guard BEFORE INSERT ON approvals
  FOR EACH ROW EXECUTE FUNCTION payrun_approvals_guard();
"#;
