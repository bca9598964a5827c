//! Test-only fault injection: a panic inside the step loop at a chosen step, so tests (and the soak script)
//! can show that a crashed step fails only its own requests and that an engine that cannot go on says so.

use std::fmt;

/// When to panic: at forward pass number `at` (counted from 1), and at every later one when `repeat`.
///
/// Written `N` (once) or `N..` (every step from N on) in `CRIA_FAULT_STEP`, which `cria serve` reads; it is
/// meant for tests only and does nothing unless set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPlan {
    pub at: u64,
    pub repeat: bool,
}

/// The environment variable `cria serve` reads a [`FaultPlan`] from.
pub const FAULT_ENV: &str = "CRIA_FAULT_STEP";

impl FaultPlan {
    /// Parses `N` or `N..` (N at least 1).
    pub fn parse(text: &str) -> Result<FaultPlan, String> {
        let text = text.trim();
        let (number, repeat) = match text.strip_suffix("..") {
            Some(n) => (n, true),
            None => (text, false),
        };
        match number.parse::<u64>() {
            Ok(at) if at >= 1 => Ok(FaultPlan { at, repeat }),
            _ => Err(format!(
                "{FAULT_ENV}={text:?}: expected a step number N >= 1 or N.. (every step from N on)"
            )),
        }
    }

    /// The plan in `CRIA_FAULT_STEP`, if it is set and not empty.
    pub fn from_env() -> Result<Option<FaultPlan>, String> {
        match std::env::var(FAULT_ENV) {
            Ok(v) if !v.trim().is_empty() => FaultPlan::parse(&v).map(Some),
            _ => Ok(None),
        }
    }

    /// Whether forward pass number `step` (from 1) panics.
    pub fn fires(&self, step: u64) -> bool {
        step == self.at || (self.repeat && step > self.at)
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.at, if self.repeat { ".." } else { "" })
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_once_and_repeating() {
        assert_eq!(
            FaultPlan::parse("3"),
            Ok(FaultPlan {
                at: 3,
                repeat: false
            })
        );
        assert_eq!(
            FaultPlan::parse(" 5.. "),
            Ok(FaultPlan {
                at: 5,
                repeat: true
            })
        );
        for bad in ["0", "", "x", "-1", "3..4", ".."] {
            assert!(FaultPlan::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_plan_fires_at_its_step_and_after_only_when_repeating() {
        let once = FaultPlan {
            at: 2,
            repeat: false,
        };
        let fired: Vec<u64> = (1..6).filter(|&s| once.fires(s)).collect();
        assert_eq!(fired, vec![2]);
        let every = FaultPlan {
            at: 2,
            repeat: true,
        };
        let fired: Vec<u64> = (1..6).filter(|&s| every.fires(s)).collect();
        assert_eq!(fired, vec![2, 3, 4, 5]);
    }
}
