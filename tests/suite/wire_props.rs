//! Property tests: no answer body, however malformed, panics the gateway parser; and every
//! well-formed answer carrying a known code is classified by that code whatever its decoration.

use payrun::gateway::wire::{classify_payout, classify_status, classify_token, parse_lenient};
use payrun::gateway::{PayoutOutcome, StatusOutcome};
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        ".{0,12}".prop_map(serde_json::Value::String),
        prop::sample::select(vec!["SU0000", "TE0005", "TE0011", "ENQ001", "BE1234", "401", "Transaction", "status"])
            .prop_map(|s| serde_json::Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "status",
                    "code",
                    "message",
                    "Transaction",
                    "Order-Id",
                    "data",
                    "utr",
                    "account_no",
                    "x"
                ])
                .prop_map(String::from),
                inner,
                0..5
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON text with random damage: chars dropped, commas and brackets inserted, text around it.
fn damaged_json() -> impl Strategy<Value = String> {
    (json_value(), prop::collection::vec((any::<prop::sample::Index>(), 0u8..6), 0..6)).prop_map(|(v, edits)| {
        let mut s: Vec<char> = v.to_string().chars().collect();
        for (idx, op) in edits {
            if s.is_empty() {
                break;
            }
            let i = idx.index(s.len());
            match op {
                0 => {
                    s.remove(i);
                }
                1 => s.insert(i, ','),
                2 => s.insert(i, '\n'),
                3 => s.insert(i, '}'),
                4 => s.insert(i, '"'),
                _ => s.splice(i..i, "//x\n".chars()).for_each(drop),
            }
        }
        s.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(body in ".{0,200}", http in 100u16..600) {
        let _ = parse_lenient(&body);
        let _ = classify_payout(http, None, &body);
        let _ = classify_status(http, None, &body);
        let _ = classify_token(http, None, &body);
    }

    #[test]
    fn damaged_json_never_panics(body in damaged_json(), http in prop::sample::select(vec![200u16, 400, 401, 429, 500, 503])) {
        let _ = classify_payout(http, None, &body);
        let _ = classify_status(http, None, &body);
        let _ = classify_token(http, None, &body);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let body = String::from_utf8_lossy(&bytes);
        let _ = classify_payout(200, None, &body);
        let _ = classify_status(200, None, &body);
    }

    /// Whatever else an answer carries, and however its status is typed, a known code decides.
    /// (The noise keys are ones no gateway uses for a payout's account, amount, UTR or order id:
    /// TE0011 beside those describes a payout and proves nothing.)
    #[test]
    fn known_codes_decide(status in prop::sample::select(vec!["1", "0", "\"1\"", "true", "false", "\"error\""]),
                          noise in prop::collection::btree_map("x_[a-z]{1,8}", "[a-z0-9 ]{0,8}", 0..4),
                          trailing_comma in any::<bool>()) {
        let extra: String = noise.iter().map(|(k, v)| format!(",\"{k}\":\"{v}\"")).collect();
        let tail = if trailing_comma { "," } else { "" };
        let body = |code: &str| format!("{{\"status\":{status},\"code\":\"{code}\"{extra}{tail}}}");
        let body_text = body("CODE");
        prop_assert!(matches!(classify_payout(200, None, &body("TE0005")), PayoutOutcome::Duplicate { .. }), "{}", body_text);
        prop_assert!(matches!(classify_payout(200, None, &body("TE0007")), PayoutOutcome::Rejected { .. }), "{}", body_text);
        prop_assert!(matches!(classify_status(200, None, &body("TE0011")), StatusOutcome::UnknownReference { .. }), "{}", body_text);
        prop_assert!(matches!(classify_status(200, None, &body("BE0042")), StatusOutcome::FailedAtBank { .. }), "{}", body_text);
        prop_assert!(matches!(classify_status(200, None, &body("TE0009")), StatusOutcome::Pending { .. }), "{}", body_text);
    }
}
