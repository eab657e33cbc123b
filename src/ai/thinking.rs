//! How much the model thinks, per model family. Gemini 3 models take a `thinkingLevel` and
//! count thinking tokens against `maxOutputTokens`, so the output budget grows with the
//! level (a small cap at a high level leaves no tokens for the answer: `MAX_TOKENS` with no
//! content). Gemini 2.5 models take a `thinkingBudget` in tokens instead, so the level maps
//! to one. Older models do not think. Pro models cannot stop thinking (`MINIMAL`). An
//! answer starved by thinking is asked again once with the least thinking the model takes.

use serde_json::{Value, json};

/// A model family, from the model id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `gemini-3*`: `thinkingLevel`.
    Three { pro: bool },
    /// `gemini-2.5*`: `thinkingBudget`.
    TwoFive { pro: bool },
    /// Older models: no thinking.
    NoThinking,
    /// An alias (`gemini-flash-latest`) or an unknown id: the level is sent as it is.
    Unknown { pro: bool },
}

impl Family {
    pub fn of(model: &str) -> Family {
        let m = model.trim().to_ascii_lowercase();
        let pro = m.contains("pro");
        if m.starts_with("gemini-3") {
            Family::Three { pro }
        } else if m.starts_with("gemini-2.5") {
            Family::TwoFive { pro }
        } else if m.starts_with("gemini-2.0") || m.starts_with("gemini-1") || m.starts_with("gemma") {
            Family::NoThinking
        } else {
            Family::Unknown { pro }
        }
    }

    fn pro(self) -> bool {
        matches!(
            self,
            Family::Three { pro: true } | Family::TwoFive { pro: true } | Family::Unknown { pro: true }
        )
    }
}

/// The thinking settings of one request.
#[derive(Clone, Debug, PartialEq)]
pub struct Thinking {
    family: Family,
    /// `MINIMAL`, `LOW`, `MEDIUM`, `HIGH`, or empty (the model's default, `HIGH` on Gemini 3).
    level: String,
}

/// Checks `ai.thinking_level` against the model at start: a combination the API would
/// refuse is refused here, with what to set instead.
pub fn check(model: &str, level: &str) -> Result<Thinking, String> {
    let family = Family::of(model);
    let level = level.trim().to_ascii_uppercase();
    if !["", "MINIMAL", "LOW", "MEDIUM", "HIGH"].contains(&level.as_str()) {
        return Err("ai.thinking_level must be MINIMAL, LOW, MEDIUM, HIGH or empty".into());
    }
    match family {
        Family::NoThinking if !level.is_empty() => {
            return Err(format!("the model {model} does not think: leave ai.thinking_level empty"));
        }
        _ if family.pro() && level == "MINIMAL" => {
            return Err(format!(
                "the model {model} cannot stop thinking: set ai.thinking_level to LOW, MEDIUM or HIGH"
            ));
        }
        _ => {}
    }
    Ok(Thinking { family, level })
}

impl Thinking {
    /// `generationConfig` for this level: the output budget and the thinking knob.
    pub fn generation(&self) -> Value {
        let level = if self.level.is_empty() && matches!(self.family, Family::Three { .. }) {
            "HIGH"
        } else {
            self.level.as_str()
        };
        // Room for the thinking and a final answer of a few hundred tokens.
        let max = match level {
            "MINIMAL" => 1024,
            "LOW" => 2048,
            "MEDIUM" => 4096,
            "" if matches!(self.family, Family::NoThinking) => 1024,
            _ => 8192,
        };
        let mut g = json!({"maxOutputTokens": max});
        match self.family {
            Family::NoThinking => {}
            Family::TwoFive { pro } if !self.level.is_empty() => {
                let budget = match level {
                    "MINIMAL" => 0,
                    "LOW" => 512,
                    "MEDIUM" => 2048,
                    _ => 6144,
                };
                let budget = if pro { budget.max(128) } else { budget };
                g["thinkingConfig"] = json!({"thinkingBudget": budget});
            }
            Family::TwoFive { .. } => {}
            Family::Three { .. } | Family::Unknown { .. } if !self.level.is_empty() => {
                g["thinkingConfig"] = json!({"thinkingLevel": self.level});
            }
            Family::Three { .. } | Family::Unknown { .. } => {}
        }
        g
    }

    /// The least thinking this model takes, for the one retry of a starved answer; `None`
    /// when it already thinks least.
    pub fn less(&self) -> Option<Thinking> {
        let least = if self.family.pro() { "LOW" } else { "MINIMAL" };
        if matches!(self.family, Family::NoThinking) || self.level == least {
            return None;
        }
        Some(Thinking { family: self.family, level: least.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_grows_with_the_level_on_gemini_3() {
        let low = check("gemini-3-flash", "LOW").unwrap().generation();
        assert_eq!(low, json!({"maxOutputTokens": 2048, "thinkingConfig": {"thinkingLevel": "LOW"}}));
        let high = check("gemini-3-flash", "").unwrap().generation();
        assert_eq!(high["maxOutputTokens"], 8192, "the default level is HIGH");
        assert!(high.get("thinkingConfig").is_none());
    }

    #[test]
    fn gemini_2_5_takes_a_budget_and_old_models_none() {
        let g = check("gemini-2.5-flash", "LOW").unwrap().generation();
        assert_eq!(g["thinkingConfig"], json!({"thinkingBudget": 512}));
        assert_eq!(
            check("gemini-2.5-pro", "MEDIUM").unwrap().generation()["thinkingConfig"]["thinkingBudget"],
            2048
        );
        assert!(check("gemini-2.0-flash", "LOW").is_err());
        assert_eq!(check("gemini-2.0-flash", "").unwrap().generation(), json!({"maxOutputTokens": 1024}));
    }

    #[test]
    fn combinations_the_api_refuses_are_refused_at_start() {
        let e = check("gemini-3-pro-preview", "MINIMAL").unwrap_err();
        assert!(e.contains("cannot stop thinking"), "{e}");
        assert!(check("gemini-3-flash", "MAXIMAL").is_err());
        assert!(check("gemini-flash-latest", "LOW").is_ok());
    }

    #[test]
    fn a_starved_answer_is_asked_again_with_the_least_thinking() {
        let t = check("gemini-3-flash", "HIGH").unwrap();
        assert_eq!(t.less().unwrap().generation()["thinkingConfig"]["thinkingLevel"], "MINIMAL");
        let pro = check("gemini-3-pro", "HIGH").unwrap();
        assert_eq!(pro.less().unwrap().generation()["thinkingConfig"]["thinkingLevel"], "LOW");
        assert!(check("gemini-3-flash", "MINIMAL").unwrap().less().is_none());
    }
}
