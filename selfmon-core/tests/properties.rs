//! Property tests: configuration and error-code round trips.

use proptest::prelude::*;
use selfmon_core::{ClaudeModel, ErrorCode, SelfMonitoringConfig};

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn well_formed_codes_round_trip(sub in "[A-Z]{2,8}", cat in "[A-Z]{2,8}", n in 0u16..1000) {
        let text = format!("{sub}-{cat}-{n:03}");
        let code = ErrorCode::parse(&text).unwrap();
        prop_assert_eq!(code.to_string(), text.clone());
        let json = serde_json::to_string(&code).unwrap();
        prop_assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code.clone());
        let found = ErrorCode::extract_all(&format!("x [{text}] y"));
        prop_assert_eq!(found, vec![code]);
    }

    #[test]
    fn code_parsing_never_panics(s in ".{0,40}") {
        let _ = ErrorCode::parse(&s);
        let _ = ErrorCode::extract_all(&s);
    }

    #[test]
    fn config_round_trips_through_json(
        enabled in any::<bool>(),
        cadence in 1u32..10_080,
        issues in 0u32..100,
        threshold in 0.0f64..=1.0,
        model in prop_oneof![Just("opus".to_string()), Just("haiku".to_string()), "claude-[a-z0-9-]{1,30}"],
        template in ".{0,200}",
    ) {
        let c = SelfMonitoringConfig {
            enabled,
            cadence_minutes: cadence,
            max_new_issues_per_scan: issues,
            model: ClaudeModel::parse(&model).unwrap(),
            prompt_template: template,
            dedup: selfmon_core::config::DedupConfig { related_threshold: threshold, ..Default::default() },
            ..Default::default()
        };
        let back = SelfMonitoringConfig::from_json(&c.to_json()).unwrap();
        prop_assert_eq!(back, c);
    }

    #[test]
    fn config_parsing_never_panics(s in ".{0,200}") {
        let _ = SelfMonitoringConfig::from_json(&s);
    }
}
