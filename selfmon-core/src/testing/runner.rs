//! A scripted analysis runner.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::traits::{Analysis, AnalysisRequest, AnalysisRunner};

/// Answers with scripted analyses in order (the last one repeats), and records every request.
#[derive(Debug, Default)]
pub struct ScriptedRunner {
    script: Mutex<VecDeque<std::result::Result<Analysis, String>>>,
    last: Mutex<Option<std::result::Result<Analysis, String>>>,
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
            .push_back(Err(message.to_string()));
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
            Some(Err(msg)) => Err(Error::adapter(crate::Component::AnalysisRunner, true, msg)),
            None => Ok(Analysis::default()),
        }
    }

    fn name(&self) -> &str {
        "scripted"
    }
}
