//! The contract's buf.validate rules (machine-readable limits on request
//! fields) are the server's: `declared_rules.py` breaks every declared rule of
//! every request, and meets each limit exactly, and checks the server against
//! the official protovalidate engine (see that file).

use crate::common::*;

on_both_backends!(the_server_enforces_every_rule_the_contract_declares);

async fn the_server_enforces_every_rule_the_contract_declares(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stdout = run_to_end(
        repo(".venv/bin/python"),
        vec![repo("tests/it/declared_rules.py").display().to_string()],
        kit_env(&app),
    )
    .await;
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect(&stdout);
    assert_eq!(report["failures"], serde_json::json!([]), "{report:#}");
    // The script fails on a declared rule no case broke; this guards against
    // it finding no rules at all (the kit's descriptors without options).
    assert!(report["rules"].as_u64().unwrap() >= 60, "{report:#}");
    assert!(report["allowed"].as_u64().unwrap() >= 30, "{report:#}");
}
