//! A batch's settings: where each comes from and which wins. A flag of `run`/`resume` beats the
//! batch's own settings remembered in the journal (on resume), which beat `payrun.toml`, which beats
//! the built-in defaults. The rules' switches (`--mode-auto`, ...) belong to the file as it was
//! read and never change on resume.

use std::time::Duration;

use crate::config::ConfigFile;
use crate::engine::EngineConfig;
use crate::journal::BatchSettings;
use crate::journal::holds::HoldRules;
use crate::sandbox::Profile;

/// Settings a flag may override (`run` and `resume` share them).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub rate: Option<u32>,
    pub burst: Option<u32>,
    pub concurrency: Option<u32>,
    pub poll_timeout: Option<Duration>,
    pub sandbox_profile: Option<Profile>,
}

/// How the file was read (recorded once, when the batch is stored).
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadSwitches {
    pub mode_auto: bool,
    pub skip_invalid: bool,
    pub allow_duplicates: bool,
    pub allow_unknown_ifsc: bool,
}

fn profile_name(p: Profile) -> Option<String> {
    clap::ValueEnum::to_possible_value(&p).map(|v| v.get_name().to_string())
}

/// Settings for a batch: `o` (flags), else `previous` (the batch's own, on resume), else
/// payrun.toml, else defaults.
pub fn settings_for(
    o: &Overrides,
    config: &ConfigFile,
    read: ReadSwitches,
    previous: Option<&BatchSettings>,
) -> BatchSettings {
    let r = &config.run;
    let prev = previous.cloned();
    let rate = o.rate.or(prev.as_ref().map(|p| p.rate)).or(r.rate).unwrap_or(10).max(1);
    let burst = o.burst.or(prev.as_ref().map(|p| p.burst)).or(r.burst).unwrap_or((rate / 10).max(1)).max(1);
    // None: the engine derives it from the rate and the latency it observes (engine::flight).
    let concurrency = o.concurrency.or(prev.as_ref().and_then(|p| p.concurrency)).or(r.concurrency).map(|c| c.max(1));
    let poll_timeout = o
        .poll_timeout
        .or(prev.as_ref().map(|p| Duration::from_millis(p.poll_timeout_ms)))
        .or(r.poll_timeout)
        .unwrap_or(Duration::from_secs(600));
    BatchSettings {
        rate,
        burst,
        concurrency,
        poll_timeout_ms: u64::try_from(poll_timeout.as_millis()).unwrap_or(u64::MAX),
        mode_auto: prev.as_ref().map(|p| p.mode_auto).unwrap_or(read.mode_auto),
        skip_invalid: prev.as_ref().map(|p| p.skip_invalid).unwrap_or(read.skip_invalid),
        allow_duplicates: prev.as_ref().map(|p| p.allow_duplicates).unwrap_or(read.allow_duplicates),
        allow_unknown_ifsc: prev.as_ref().map(|p| p.allow_unknown_ifsc).unwrap_or(read.allow_unknown_ifsc),
        latitude: prev.as_ref().map(|p| p.latitude.clone()).or(r.latitude.clone()).unwrap_or_default(),
        longitude: prev.as_ref().map(|p| p.longitude.clone()).or(r.longitude.clone()).unwrap_or_default(),
        payee_list_id: prev.as_ref().map(|p| p.payee_list_id.clone()).or(r.payee_list_id.clone()).unwrap_or_default(),
        sandbox_profile: o
            .sandbox_profile
            .and_then(profile_name)
            .or(prev.as_ref().and_then(|p| p.sandbox_profile.clone())),
    }
}

/// The engine's configuration from a batch's settings and payrun.toml.
pub fn engine_config(s: &BatchSettings, config: &ConfigFile) -> EngineConfig {
    let r = &config.run;
    let d = EngineConfig::default();
    EngineConfig {
        concurrency: s.concurrency.map(|c| c as usize),
        rate: s.rate.max(1),
        max_in_flight: r.max_in_flight.map(|m| m.max(1) as usize),
        poll_timeout: Duration::from_millis(s.poll_timeout_ms),
        first_poll: r.first_poll.unwrap_or(d.first_poll),
        pending_poll: r.first_poll.map(|f| f.saturating_mul(4)).unwrap_or(d.pending_poll),
        max_poll_interval: r.max_poll_interval.unwrap_or(d.max_poll_interval),
        resend_grace: r.resend_grace.unwrap_or(d.resend_grace),
        request_timeout: super::connect::request_timeout(config),
        latitude: s.latitude.clone(),
        longitude: s.longitude.clone(),
        payee_list_id: s.payee_list_id.clone(),
        ..d
    }
}

/// The cross-batch rules from payrun.toml.
pub fn hold_rules(config: &ConfigFile) -> HoldRules {
    let d = HoldRules::default();
    HoldRules { repeat_window: config.run.repeat_window.unwrap_or(d.repeat_window) }
}

/// The embedded sandbox's profile recorded in a batch's settings (realistic when none is).
pub fn embedded_profile(settings: &BatchSettings) -> Profile {
    use clap::ValueEnum;
    settings.sandbox_profile.as_deref().and_then(|p| Profile::from_str(p, true).ok()).unwrap_or(Profile::Realistic)
}
