//! A scripted analysis runner.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::traits::{Analysis, AnalysisRequest, AnalysisRunner};

/// A scripted failure.
#[derive(Debug, Clone)]
enum Failure {
    /// A retryable runner error.
    Retryable(String),
    /// [`Error::NoAnswer`].
    NoAnswer(String),
}

/// Answers with scripted analyses in order (the last one repeats), and records every request.
#[derive(Debug, Default)]
pub struct ScriptedRunner {
    script: Mutex<VecDeque<std::result::Result<Analysis, Failure>>>,
    last: Mutex<Option<std::result::Result<Analysis, Failure>>>,
    requests: Mutex<Vec<AnalysisRequest>>,
}

impl ScriptedRunner {
    /// A runner that answers `analysis` every time.
    pub fn always(analysis: Analysis) -> Self {
        let r = Self::default();
        r.push(analysis);
        r
    }

    /// Queues an answer.
    pub fn push(&self, analysis: Analysis) {
        self.script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Ok(analysis));
    }

    /// Queues a failure (a retryable runner error with `message`).
    pub fn push_failure(&self, message: &str) {
        self.script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Err(Failure::Retryable(message.to_string())));
    }

    /// Queues a failure to answer for the request ([`Error::NoAnswer`] with `message`): what a
    /// model that refuses the records gives.
    pub fn push_no_answer(&self, message: &str) {
        self.script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Err(Failure::NoAnswer(message.to_string())));
    }

    /// Every request received.
    pub fn requests(&self) -> Vec<AnalysisRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl AnalysisRunner for ScriptedRunner {
    async fn analyze(&self, request: &AnalysisRequest) -> Result<Analysis> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.clone());
        let next = self
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = next {
            *last = Some(n);
        }
        match last.clone() {
            Some(Ok(a)) => Ok(a),
            Some(Err(Failure::Retryable(msg))) => {
                Err(Error::adapter(crate::Component::AnalysisRunner, true, msg))
            }
            Some(Err(Failure::NoAnswer(msg))) => Err(Error::no_answer(msg)),
            None => Ok(Analysis::default()),
        }
    }

    fn name(&self) -> &str {
        "scripted"
    }
}
