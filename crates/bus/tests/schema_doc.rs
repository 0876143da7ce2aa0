//! docs/events.md documents every kind and every field the events carry:
//! an event type that gains a field without its documentation fails here.

use tradelab_bus::event::*;

fn one_of_each() -> Vec<EventBody> {
    vec![
        EventBody::Decision(DecisionEvent {
            instrument: "X".into(),
            model: "m".into(),
            action: "HOLD".into(),
            quantity: 1.0,
            probabilities: [0.2; 5],
            value: 0.0,
            inputs: DecisionInputs::new(&[0.0; 4], 2, [0.0; 3], [true; 5], [0, 0], 1.0, 0.0, 1.0, 1.0),
        }),
        EventBody::Order(OrderEvent {
            client_order_id: "c".into(),
            instrument: "X".into(),
            action: "BUY_LONG".into(),
            qty: Some(1.0),
            status: "submitted".into(),
            detail: None,
        }),
        EventBody::Fill(FillEvent {
            instrument: "X".into(),
            action: "BUY_LONG".into(),
            qty: 1.0,
            side: "buy".into(),
            price: 1.0,
            fee: 0.0,
        }),
        EventBody::RiskVerdict(RiskVerdict {
            instrument: "X".into(),
            orders: 1,
            allowed: true,
            reason: "r".into(),
        }),
        EventBody::Breaker(BreakerEvent {
            breaker: "latency".into(),
            from: "closed".into(),
            to: "open".into(),
            policy: "hold".into(),
            reason: "r".into(),
        }),
        EventBody::Model(ModelEvent {
            change: "loaded".into(),
            model: "m".into(),
            kind: "ppo-lstm".into(),
            weights_sha256: "0".into(),
        }),
        EventBody::Session(SessionNote {
            note: "end".into(),
            detail: serde_json::json!({}),
        }),
    ]
}

fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
    if let Some(map) = v.as_object() {
        for (k, inner) in map {
            out.push(k.clone());
            keys(inner, out);
        }
    }
}

#[test]
fn every_kind_and_field_is_documented() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events.md")).unwrap();
    let mut missing = Vec::new();
    for body in one_of_each() {
        let e = Event::seal("s", 1, 0, None, body, GENESIS_HASH);
        if !doc.contains(&format!("### `{}`", e.kind())) {
            missing.push(format!("kind {}", e.kind()));
        }
        let mut fields = Vec::new();
        keys(&serde_json::to_value(&e).unwrap(), &mut fields);
        for f in fields {
            if !doc.contains(&format!("`{f}`")) {
                missing.push(format!("{}: field {f}", e.kind()));
            }
        }
    }
    assert!(missing.is_empty(), "docs/events.md lacks: {missing:?}");
    assert!(doc.contains(&format!("schema version {SCHEMA_VERSION}")));
}
