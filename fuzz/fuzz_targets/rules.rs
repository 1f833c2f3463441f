//! Rule, host-pattern, mount and env grammars: never panic, and a parsed rule prints back to
//! itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use standin_policy::egress::{HostPattern, Rule};
use standin_policy::{EnvSpec, MountSpec};

fuzz_target!(|data: &str| {
    if let Ok(rule) = Rule::parse(data) {
        let printed = rule.to_string();
        assert_eq!(Rule::parse(&printed).map(|r| r.to_string()), Ok(printed));
    }
    let _ = HostPattern::parse(data);
    let _ = MountSpec::parse(data);
    let _ = EnvSpec::parse(data);
});
