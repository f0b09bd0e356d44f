use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use crate::memory::JobHandler;
use crate::model::{ClaudeModel, ScanTrigger};
use crate::traits::{JobId, JobKind, JobQueue, JobSpec, JobStatus, Submission};

/// How long the suite waits for a queue to start or finish a job before calling it stuck. Only a
/// bound against hanging forever: nothing is asserted about how fast a queue is.
const PATIENCE: Duration = Duration::from_secs(30);

/// The suite's own job handler: every job waits at a gate the suite opens one job at a time, and
/// the handler records the order jobs started in and how many ran at once.
struct GatedHandler {
    gate: Semaphore,
    started: Mutex<Vec<String>>,
    running: Mutex<usize>,
    most_at_once: Mutex<usize>,
}

impl GatedHandler {
    fn new() -> Self {
        GatedHandler {
            gate: Semaphore::new(0),
            started: Mutex::default(),
            running: Mutex::default(),
            most_at_once: Mutex::default(),
        }
    }

    fn started(&self) -> Vec<String> {
        self.started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl JobHandler for GatedHandler {
    async fn run(&self, job: &JobSpec) -> std::result::Result<(), String> {
        let name = job.payload["name"].as_str().unwrap_or("?").to_string();
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            *running += 1;
            let mut most = self.most_at_once.lock().unwrap_or_else(|p| p.into_inner());
            *most = (*most).max(*running);
        }
        self.started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name.clone());
        // Each permit the suite adds lets exactly one job through.
        if let Ok(permit) = self.gate.acquire().await {
            permit.forget();
        }
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        if job.payload["fail"].as_bool() == Some(true) {
            Err(format!("conformance job {name} failed on purpose"))
        } else {
            Ok(())
        }
    }
}

fn job(kind: JobKind, name: &str, fail: bool) -> JobSpec {
    JobSpec {
        kind,
        model: ClaudeModel::default(),
        trigger: ScanTrigger::Manual,
        payload: serde_json::json!({ "name": name, "fail": fail }),
    }
}

fn other() -> JobKind {
    JobKind::Other("conformance-other".into())
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "job queue: {what} did not happen within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_finished(queue: &dyn JobQueue, id: &JobId) -> JobStatus {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = queue
            .status(id)
            .await
            .expect("status")
            .unwrap_or_else(|| panic!("job queue: status({id}) must know a job it accepted"));
        if !status.is_active() {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job queue: job {id} did not finish within {PATIENCE:?} after its gate opened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Checks a [`JobQueue`] against its contract: jobs run one at a time in submission order, a
/// job's status goes queued → running → succeeded or failed (with the handler's text),
/// `status` is `None` for an id the queue never gave out, `active_job` names the running job
/// (then the oldest queued one) of a kind and nothing for other kinds, and `submit_if_idle`
/// submits nothing while a job of the kind is active.
///
/// `start` builds a fresh, empty queue whose jobs are run by the given [`JobHandler`] (for a
/// host's own queue: whatever it does to run a job, it calls the handler and reports its result).
/// The suite's handler holds every job at a gate it opens one job at a time, so every check is
/// deterministic. Panics (asserts) on a violation, naming the rule.
pub async fn job_queue<Q, F>(start: F)
where
    Q: JobQueue,
    F: FnOnce(Arc<dyn JobHandler>) -> Q,
{
    let handler = Arc::new(GatedHandler::new());
    let queue = start(handler.clone());
    let queue: &dyn JobQueue = &queue;
    let scan = JobKind::SelfMonitoring;

    assert_eq!(
        queue
            .status(&JobId("never-given-out".into()))
            .await
            .expect("status"),
        None,
        "status of an unknown id must be None"
    );
    assert_eq!(
        queue.active_job(&scan).await.expect("active_job"),
        None,
        "an empty queue has no active job"
    );

    // Three jobs; the first runs (held at the gate), the others wait their turn.
    let a = queue
        .submit(job(scan.clone(), "a", false))
        .await
        .expect("submit a");
    let b = queue
        .submit(job(other(), "b", true))
        .await
        .expect("submit b");
    let c = queue
        .submit(job(scan.clone(), "c", false))
        .await
        .expect("submit c");
    assert!(
        a != b && b != c && a != c,
        "every submit must get its own id"
    );
    wait_until("the first job starting", || handler.started().len() == 1).await;
    assert_eq!(handler.started(), ["a"], "the oldest job must run first");
    assert_eq!(
        queue.status(&a).await.expect("status"),
        Some(JobStatus::Running),
        "a started job is running"
    );
    for (id, name) in [(&b, "b"), (&c, "c")] {
        assert_eq!(
            queue.status(id).await.expect("status"),
            Some(JobStatus::Queued),
            "job {name} waits while another runs (one job at a time)"
        );
    }
    assert_eq!(
        queue.active_job(&scan).await.expect("active_job"),
        Some((a.clone(), JobStatus::Running)),
        "active_job names the running job of the kind"
    );
    assert_eq!(
        queue
            .active_job(&JobKind::GoldenRepo)
            .await
            .expect("active_job"),
        None,
        "active_job of a kind with no job is None"
    );

    // submit_if_idle never adds a second active job of a kind.
    assert_eq!(
        queue
            .submit_if_idle(job(scan.clone(), "refused", false))
            .await
            .expect("submit_if_idle"),
        Submission::AlreadyActive {
            job_id: a.clone(),
            status: JobStatus::Running
        },
        "submit_if_idle while a job of the kind is active must return that job"
    );

    // Open the gate one job at a time: they finish in order, each with its outcome.
    handler.gate.add_permits(1);
    assert_eq!(wait_finished(queue, &a).await, JobStatus::Succeeded);
    wait_until("the second job starting", || handler.started().len() == 2).await;
    assert_eq!(
        queue.active_job(&scan).await.expect("active_job"),
        Some((c.clone(), JobStatus::Queued)),
        "with none running, active_job names the oldest queued job of the kind"
    );
    handler.gate.add_permits(1);
    match wait_finished(queue, &b).await {
        JobStatus::Failed { error } => assert!(
            error.contains("failed on purpose"),
            "a failed job's status carries the handler's error text, got {error:?}"
        ),
        s => panic!("a job whose handler fails must end Failed, got {s:?}"),
    }
    handler.gate.add_permits(1);
    assert_eq!(wait_finished(queue, &c).await, JobStatus::Succeeded);
    assert_eq!(
        handler.started(),
        ["a", "b", "c"],
        "jobs run in submission order"
    );
    assert_eq!(
        *handler
            .most_at_once
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
        1,
        "jobs run one at a time"
    );
    assert_eq!(
        queue.status(&a).await.expect("status"),
        Some(JobStatus::Succeeded),
        "a finished job keeps its status"
    );

    // Idle again: submit_if_idle submits.
    assert_eq!(
        queue.active_job(&scan).await.expect("active_job"),
        None,
        "a kind whose jobs all finished has no active job"
    );
    let d = match queue
        .submit_if_idle(job(scan.clone(), "d", false))
        .await
        .expect("submit_if_idle")
    {
        Submission::Submitted { job_id } => job_id,
        s => panic!("submit_if_idle on an idle kind must submit, got {s:?}"),
    };
    assert!(
        ![&a, &b, &c].contains(&&d),
        "a new job gets a new id, never a finished job's"
    );
    handler.gate.add_permits(1);
    assert_eq!(wait_finished(queue, &d).await, JobStatus::Succeeded);
}
