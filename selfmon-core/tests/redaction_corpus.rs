//! Measured redaction quality: every planted secret is redacted, and ordinary log lines are
//! (almost) never changed. The secrets are generated here; none is a real credential.

use selfmon_core::redact::Redactor;

/// A small deterministic generator (xorshift64*), so the corpus is the same on every run.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn chars(&mut self, alphabet: &str, n: usize) -> String {
        let a: Vec<char> = alphabet.chars().collect();
        (0..n)
            .map(|_| a[(self.next() % a.len() as u64) as usize])
            .collect()
    }
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_NUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URLSAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// (kind, the secret value, the log line that carries it)
fn secrets(g: &mut Gen) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for i in 0..20 {
        let gh = format!(
            "{}_{}",
            g.pick(&["ghp", "gho", "ghu", "ghs", "ghr"]),
            g.chars(ALNUM, 36)
        );
        out.push((
            "github",
            gh.clone(),
            format!("git push failed: remote rejected token {gh} for repo r{i}"),
        ));
        let pat = format!("github_pat_{}_{}", g.chars(ALNUM, 22), g.chars(ALNUM, 59));
        out.push((
            "github_pat",
            pat.clone(),
            format!("GITHUB_TOKEN={pat} exported for sync job {i}"),
        ));
        let akia = format!("AKIA{}", g.chars(UPPER_NUM, 16));
        out.push((
            "aws_access",
            akia.clone(),
            format!("S3 upload as {akia} to bucket logs-{i} failed: AccessDenied"),
        ));
        let secret = g.chars(B64, 40);
        out.push((
            "aws_secret",
            secret.clone(),
            format!("boto config aws_secret_access_key = {secret} region=eu-west-1"),
        ));
        let slack = format!(
            "xoxb-{}-{}-{}",
            g.chars("0123456789", 12),
            g.chars("0123456789", 12),
            g.chars(ALNUM, 24)
        );
        out.push((
            "slack",
            slack.clone(),
            format!("notify failed with slack token {slack}: channel_not_found"),
        ));
        let hook = format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            g.chars(UPPER_NUM, 8),
            g.chars(UPPER_NUM, 8),
            g.chars(ALNUM, 24)
        );
        out.push((
            "slack_webhook",
            hook.clone(),
            format!("POST {hook} returned 404"),
        ));
        let stripe = format!(
            "{}_{}",
            g.pick(&["sk_live", "rk_live", "sk_test"]),
            g.chars(ALNUM, 24)
        );
        out.push((
            "stripe",
            stripe.clone(),
            format!("billing client init key={stripe} attempt {i}"),
        ));
        let google = format!("AIza{}", g.chars(URLSAFE, 35));
        out.push((
            "google",
            google.clone(),
            format!("GET https://maps.example.invalid/api?key={google} 403"),
        ));
        let anthropic = format!("sk-ant-api03-{}", g.chars(URLSAFE, 40));
        out.push((
            "anthropic",
            anthropic.clone(),
            format!("claude call failed (401) with ANTHROPIC_API_KEY {anthropic}"),
        ));
        let openai = format!("sk-proj-{}", g.chars(URLSAFE, 48));
        out.push((
            "openai",
            openai.clone(),
            format!("embedding request with api key {openai} rate limited"),
        ));
        let jwt = format!(
            "eyJ{}.eyJ{}.{}",
            g.chars(URLSAFE, 20),
            g.chars(URLSAFE, 40),
            g.chars(URLSAFE, 43)
        );
        out.push((
            "jwt",
            jwt.clone(),
            format!("rejected session jwt {jwt} (expired)"),
        ));
        let body = g.chars(B64, 64);
        let pk = format!(
            "-----BEGIN RSA PRIVATE KEY-----\n{body}\n{}\n-----END RSA PRIVATE KEY-----",
            g.chars(B64, 64)
        );
        out.push((
            "private_key",
            body.clone(),
            format!("loaded deploy key:\n{pk}\nfor mirror {i}"),
        ));
        let bearer = g.chars(URLSAFE, 32);
        out.push((
            "bearer",
            bearer.clone(),
            format!("upstream call headers: Authorization: Bearer {bearer}"),
        ));
        let basic = g.chars(B64, 24) + "==";
        out.push((
            "basic",
            basic.clone(),
            format!("proxy auth header Basic {basic} refused"),
        ));
        let pass = g.chars(ALNUM, 14);
        out.push((
            "url_password",
            pass.clone(),
            format!("connect to postgresql://svc_user:{pass}@db-{i}.internal:5432/cidx failed"),
        ));
        let pass = g.chars(ALNUM, 12);
        out.push((
            "kv_password",
            pass.clone(),
            format!("login attempt user=admin password={pass} from cli"),
        ));
        let token = g.chars(ALNUM, 30);
        out.push((
            "kv_token",
            token.clone(),
            format!("{{\"event\": \"refresh\", \"refresh_token\": \"{token}\"}}"),
        ));
        let key = g.chars(ALNUM, 32);
        out.push((
            "kv_api_key",
            key.clone(),
            format!("request to indexer with X-Api-Key: {key} denied"),
        ));
        let pwd = g.chars(ALNUM, 10);
        out.push((
            "conn_string",
            pwd.clone(),
            format!("odbc: Driver={{SQL Server}};Server=db{i};Uid=sa;Pwd={pwd};Encrypt=yes"),
        ));
        let email = format!(
            "{}.{}@{}.com",
            g.chars("abcdefghij", 6),
            g.chars("klmnopqrst", 7),
            g.chars("abcdefghijklmnop", 8)
        );
        out.push((
            "email",
            email.clone(),
            format!("password reset mail sent to {email}"),
        ));
    }
    out
}

fn ordinary(g: &mut Gen, n: usize) -> Vec<String> {
    let repos = [
        "alpha",
        "beta",
        "gamma",
        "code-indexer",
        "golden/main",
        "docs-site",
    ];
    let users = ["u1", "u42", "alice", "bob", "svc-indexer"];
    (0..n)
        .map(|i| {
            let repo = g.pick(&repos);
            let user = g.pick(&users);
            let ms = g.next() % 5000;
            match i % 25 {
                0 => format!("GET /api/repos/{repo}/files?limit=100 200 in {ms}ms"),
                1 => format!("[GIT-SYNC-001] git fetch failed for /srv/golden/{repo}: exit status 128"),
                2 => format!("job {} finished in {}.{}s (indexed {} files)", g.next() % 100000, ms / 1000, ms % 1000, ms),
                3 => format!("token expired for user {user}; refresh required"),
                4 => format!("basic authentication is disabled for {repo}"),
                5 => format!("claude usage: input_tokens: {ms} output_tokens: {}", ms / 3),
                6 => format!("clone git@github.com:org/{repo}.git into /var/lib/cidx/repos/{repo}"),
                7 => format!("Traceback (most recent call last):\n  File \"/app/code_indexer/server/app.py\", line {}, in handle\nKeyError: '{repo}'", ms % 900),
                8 => format!("request validation failed for user {user}: field 'limit' must be <= 100"),
                9 => format!("parameter 'repo_alias' is deprecated; use 'alias' instead ({user})"),
                10 => format!("[DB-LOCK-003] database is locked after {} retries", ms % 10),
                11 => format!("password reset requested for user {user}"),
                12 => format!("HTTP 429 from https://api.github.com/repos/org/{repo}/issues, retry in {}s", ms % 60),
                13 => format!("secret scanning finished for {repo}: 0 findings"),
                14 => format!("cache hit ratio {}.{}% for shard {}", ms % 100, ms % 10, ms % 16),
                15 => format!("connected to postgresql://db.internal:5432/cidx as {user}"),
                16 => format!("watcher: file /srv/repos/{repo}/src/main.rs changed (inode {})", g.next() % 1_000_000),
                17 => format!("thread 'worker-{}' panicked at src/index/writer.rs:{}:5: index out of bounds", ms % 8, ms % 400),
                18 => format!("slow query took {ms}ms: SELECT * FROM logs WHERE id > {} ORDER BY id LIMIT 10000", g.next() % 100000),
                19 => format!("session {} started for {user} from web ui", g.chars("0123456789abcdef", 8)),
                20 => format!("embedding batch of {} chunks sent to voyage-code-3", ms % 128),
                21 => format!("key rotation scheduled in {} days", ms % 30),
                22 => format!("auth provider returned 401 for {user}: invalid credentials"),
                23 => format!("sha {} pushed to refs/heads/main of {repo}", g.chars("0123456789abcdef", 40)),
                _ => format!("health check ok: {} jobs queued, {} running", ms % 10, ms % 3),
            }
        })
        .collect()
}

#[test]
fn every_planted_secret_is_redacted() {
    let mut g = Gen(0x5EED_1234_ABCD_0001);
    let corpus = secrets(&mut g);
    assert!(corpus.len() >= 200, "corpus has {} secrets", corpus.len());
    let red = Redactor::new();
    let mut missed = Vec::new();
    for (kind, secret, line) in &corpus {
        let out = red.redact_string(line);
        if out.contains(secret.as_str()) || !out.contains("[REDACTED:") {
            missed.push(format!("{kind}: {line:?} -> {out:?}"));
        }
    }
    println!(
        "redaction corpus: {} secrets, {} missed",
        corpus.len(),
        missed.len()
    );
    assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
}

#[test]
fn ordinary_log_lines_are_rarely_changed() {
    let mut g = Gen(0x0DD_BA11_0000_0007);
    let lines = ordinary(&mut g, 10_000);
    let red = Redactor::new();
    let changed: Vec<(&String, String)> = lines
        .iter()
        .filter_map(|l| {
            let out = red.redact_string(l);
            (out != *l).then_some((l, out))
        })
        .collect();
    let ratio = changed.len() as f64 / lines.len() as f64;
    println!(
        "ordinary lines changed by redaction: {} of {} ({:.3}%)",
        changed.len(),
        lines.len(),
        ratio * 100.0
    );
    for (l, o) in changed.iter().take(5) {
        println!("  changed: {l:?} -> {o:?}");
    }
    assert!(
        ratio <= 0.005,
        "{:.3}% of ordinary lines changed",
        ratio * 100.0
    );
}
