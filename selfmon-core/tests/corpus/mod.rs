#![allow(dead_code)]
//! Generated corpora for the redaction tests: planted secrets of many kinds in realistic log lines
//! at many positions, and ordinary server log lines that hold no secret. Deterministic (a fixed
//! xorshift seed); none of the secrets is a real credential.

/// A small deterministic generator (xorshift64*), so a corpus is the same on every run.
pub struct Gen(pub u64);

impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    pub fn chars(&mut self, alphabet: &str, n: usize) -> String {
        let a: Vec<char> = alphabet.chars().collect();
        (0..n)
            .map(|_| a[(self.next() % a.len() as u64) as usize])
            .collect()
    }
}

pub const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub const UPPER_NUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
pub const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub const URLSAFE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
pub const HEX: &str = "0123456789abcdef";
pub const DIGITS: &str = "0123456789";

/// How a secret may be placed in a line.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// A token that may stand anywhere, with or without a keyword.
    Token,
    /// Only meaningful in its own context (a header, a URL, a block): the kind supplies its lines.
    Own,
}

/// One planted secret: its kind, the value that must not survive, and the log line carrying it.
#[derive(Clone, Debug)]
pub struct Planted {
    pub kind: &'static str,
    pub secret: String,
    pub line: String,
}

fn token(g: &mut Gen, kind: usize) -> (&'static str, String) {
    match kind {
        0 => (
            "github_token",
            format!(
                "{}_{}",
                g.pick(&["ghp", "gho", "ghu", "ghs", "ghr"]),
                g.chars(ALNUM, 36)
            ),
        ),
        1 => (
            "github_pat",
            format!("github_pat_{}_{}", g.chars(ALNUM, 22), g.chars(ALNUM, 59)),
        ),
        2 => ("gitlab_token", format!("glpat-{}", g.chars(URLSAFE, 20))),
        3 => ("aws_access_key", format!("AKIA{}", g.chars(UPPER_NUM, 16))),
        4 => (
            "slack_token",
            format!(
                "xoxb-{}-{}-{}",
                g.chars(DIGITS, 12),
                g.chars(DIGITS, 12),
                g.chars(ALNUM, 24)
            ),
        ),
        5 => (
            "stripe_key",
            format!(
                "{}_{}",
                g.pick(&["sk_live", "rk_live", "sk_test"]),
                g.chars(ALNUM, 24)
            ),
        ),
        6 => ("google_api_key", format!("AIza{}", g.chars(URLSAFE, 35))),
        7 => (
            "anthropic_key",
            format!(
                "sk-ant-api03-{}-{}AA",
                g.chars(URLSAFE, 80),
                g.chars(URLSAFE, 10)
            ),
        ),
        8 => (
            "openai_project_key",
            format!("sk-proj-{}", g.chars(URLSAFE, 100)),
        ),
        9 => (
            "openai_legacy_key",
            format!("sk-{}T3BlbkFJ{}", g.chars(ALNUM, 20), g.chars(ALNUM, 20)),
        ),
        10 => (
            "pypi_token",
            format!("pypi-AgEIcHlwaS5vcmc{}", g.chars(URLSAFE, 64)),
        ),
        11 => ("npm_token", format!("npm_{}", g.chars(ALNUM, 36))),
        12 => (
            "sendgrid_key",
            format!("SG.{}.{}", g.chars(URLSAFE, 22), g.chars(URLSAFE, 43)),
        ),
        13 => ("twilio_key", format!("SK{}", g.chars(HEX, 32))),
        14 => ("digitalocean_token", format!("dop_v1_{}", g.chars(HEX, 64))),
        15 => ("vault_token", format!("hvs.{}", g.chars(URLSAFE, 90))),
        16 => ("azure_storage_key", format!("{}==", g.chars(B64, 86))),
        17 => (
            "jwt",
            format!(
                "eyJ{}.eyJ{}.{}",
                g.chars(URLSAFE, 20),
                g.chars(URLSAFE, 40),
                g.chars(URLSAFE, 43)
            ),
        ),
        18 => ("huggingface_token", format!("hf_{}", g.chars(ALNUM, 34))),
        19 => ("databricks_token", format!("dapi{}", g.chars(HEX, 32))),
        20 => ("shopify_token", format!("shpat_{}", g.chars(HEX, 32))),
        21 => (
            "telegram_token",
            format!("{}:AA{}", g.chars(DIGITS, 10), g.chars(URLSAFE, 33)),
        ),
        22 => ("mailgun_key", format!("key-{}", g.chars(HEX, 32))),
        23 => (
            "postman_key",
            format!("PMAK-{}-{}", g.chars(HEX, 24), g.chars(HEX, 34)),
        ),
        24 => ("linear_key", format!("lin_api_{}", g.chars(ALNUM, 40))),
        25 => {
            let len = [32usize, 48, 56][g.below(3) as usize];
            ("unkeyed_hex", g.chars(HEX, len))
        }
        26 => ("unkeyed_base64", g.chars(B64, 40)),
        27 => ("unkeyed_urlsafe", g.chars(URLSAFE, 32)),
        28 => ("aws_secret_unkeyed", g.chars(B64, 40)),
        29 => ("newrelic_key", format!("NRAK-{}", g.chars(UPPER_NUM, 27))),
        30 => ("doppler_token", format!("dp.pt.{}", g.chars(ALNUM, 43))),
        // Held out in issue #18's second end-to-end check: formats whose random part looks like
        // a hash (40/64 hex after a prefix), base64 of text, and credentials of several pieces
        // joined by `.`, `~`, `$`, `%` or `:`.
        32 => ("pulumi_token", format!("pul-{}", g.chars(HEX, 40))),
        33 => (
            "sonarqube_token",
            format!("{}_{}", g.pick(&["squ", "sqp", "sqa"]), g.chars(HEX, 40)),
        ),
        34 => ("linear_oauth", format!("lin_oauth_{}", g.chars(HEX, 64))),
        35 => ("sentry_user_token", format!("sntryu_{}", g.chars(HEX, 64))),
        36 => (
            "artifactory_reference_token",
            base64(format!("reftkn:01:{}:{}", g.chars(DIGITS, 10), g.chars(ALNUM, 27)).as_bytes())
                .trim_end_matches('=')
                .to_string(),
        ),
        37 => (
            "aws_session_token",
            format!("IQoJb3JpZ2luX2Vj{}", g.chars(B64, 300)),
        ),
        38 => {
            let pem = format!(
                "-----BEGIN {} PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n",
                g.pick(&["RSA", "EC", "OPENSSH"]),
                g.chars(B64, 300)
            );
            ("base64_private_key", base64(pem.as_bytes()))
        }
        39 => (
            "dynatrace_token",
            format!(
                "dt0c01.{}.{}",
                g.chars(UPPER_NUM, 24),
                g.chars(UPPER_NUM, 64)
            ),
        ),
        40 => (
            "terraform_cloud_token",
            format!("{}.atlasv1.{}", g.chars(ALNUM, 14), g.chars(URLSAFE, 67)),
        ),
        41 => (
            "discord_bot_token",
            format!(
                "{}.{}.{}",
                base64(g.chars(DIGITS, 18).as_bytes()),
                g.chars(URLSAFE, 6),
                g.chars(URLSAFE, 27)
            ),
        ),
        42 => (
            "azure_ad_client_secret",
            format!(
                "{}8Q~{}",
                g.chars(ALNUM, 3),
                g.chars(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~.-",
                    34
                )
            ),
        ),
        43 => (
            "braintree_token",
            format!(
                "access_token$production${}${}",
                g.chars("abcdefghijklmnopqrstuvwxyz0123456789", 16),
                g.chars(HEX, 32)
            ),
        ),
        44 => (
            "twitter_bearer",
            format!(
                "AAAAAAAAAAAAAAAAAAAAA{}%3D{}",
                g.chars(ALNUM, 30),
                g.chars(ALNUM, 50)
            ),
        ),
        45 => (
            "mapbox_secret_token",
            format!(
                "sk.{}.{}",
                base64(
                    format!(
                        "{{\"u\":\"{}\",\"a\":\"{}\"}}",
                        g.chars(HEX, 8),
                        g.chars(ALNUM, 25)
                    )
                    .as_bytes()
                )
                .trim_end_matches('='),
                g.chars(URLSAFE, 22)
            ),
        ),
        46 => (
            "dotted_session_token",
            format!(
                "{}.{}~{}",
                g.chars(ALNUM, 12),
                g.chars(ALNUM, 12),
                g.chars(ALNUM, 12)
            ),
        ),
        47 => (
            "firebase_server_key",
            format!(
                "AAAA{}:APA91b{}",
                g.chars(URLSAFE, 7),
                g.chars(URLSAFE, 134)
            ),
        ),
        _ => (
            "age_key",
            format!(
                "AGE-SECRET-KEY-1{}",
                g.chars("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58)
            ),
        ),
    }
}

const TOKEN_KINDS: usize = 48;

/// Lines that carry `s` at start, middle, end, in JSON, in URLs, after `/`, after `=`, with and
/// without a keyword.
fn placements(g: &mut Gen, s: &str) -> Vec<String> {
    let n = g.below(900);
    vec![
        format!("{s} rejected by upstream gateway (attempt {n})"),
        format!("sync job {n} used {s} while cloning repo alpha"),
        format!("retrying request {n} for mirror beta with {s}"),
        format!("{{\"event\":\"upstream_call\",\"value\":\"{s}\",\"attempt\":{n}}}"),
        format!("{{\"api_key\": \"{s}\", \"ok\": false}}"),
        format!("GET https://api.example.invalid/v1/items?key={s}&page={n} 401"),
        format!("POST https://hooks.example.invalid/notify/{s} returned 404"),
        format!("loading /run/secrets/{s} failed"),
        format!("env INDEXER_CREDENTIAL={s} exported for worker {n}"),
        format!("config x={s} y=2"),
        format!("token: {s}"),
        format!("upstream said: invalid value '{s}'."),
        format!("[{s}] handshake failed"),
    ]
}

/// Secrets that only make sense in their own context, with the lines that carry them.
fn own_kind(g: &mut Gen, i: usize) -> Vec<Planted> {
    let mut out = Vec::new();
    let n = g.below(900);
    let akia = format!("AKIA{}", g.chars(UPPER_NUM, 16));
    let secret = g.chars(B64, 40);
    for line in [
        format!("AWS creds in env: {akia} / {secret}"),
        format!("using {akia} {secret} for s3 sync {n}"),
        format!("{{\"AccessKeyId\": \"{akia}\", \"SecretAccessKey\": \"{secret}\"}}"),
    ] {
        out.push(Planted {
            kind: "aws_secret_pair",
            secret: secret.clone(),
            line: line.clone(),
        });
        out.push(Planted {
            kind: "aws_access_key",
            secret: akia.clone(),
            line,
        });
    }
    let hook = format!(
        "https://hooks.slack.com/services/T{}/B{}/{}",
        g.chars(UPPER_NUM, 8),
        g.chars(UPPER_NUM, 8),
        g.chars(ALNUM, 24)
    );
    out.push(Planted {
        kind: "slack_webhook",
        secret: hook.clone(),
        line: format!("POST {hook} returned 404"),
    });
    let body = g.chars(B64, 64);
    let block = format!(
        "-----BEGIN {} PRIVATE KEY-----\n{body}\n{}\n-----END {0} PRIVATE KEY-----",
        g.pick(&["RSA", "EC", "OPENSSH"]),
        g.chars(B64, 64)
    );
    for line in [
        format!("loaded deploy key:\n{block}\nfor mirror {i}"),
        format!("{block} was rejected"),
        format!("key file contents: {block}"),
    ] {
        out.push(Planted {
            kind: "private_key",
            secret: body.clone(),
            line,
        });
    }
    let bearer = g.chars(URLSAFE, 32);
    for line in [
        format!("upstream call headers: Authorization: Bearer {bearer}"),
        format!("{{\"headers\": {{\"authorization\": \"Bearer {bearer}\"}}}}"),
        format!("curl -H 'Authorization: token {bearer}' https://api.example.invalid"),
        format!("retrying with bearer {bearer}"),
    ] {
        out.push(Planted {
            kind: "bearer",
            secret: bearer.clone(),
            line,
        });
    }
    let basic = g.chars(B64, 24) + "==";
    out.push(Planted {
        kind: "basic",
        secret: basic.clone(),
        line: format!("proxy auth header Authorization: Basic {basic} refused"),
    });
    let pass = g.chars(ALNUM, 14);
    for line in [
        format!("connect to postgresql://svc_user:{pass}@db-{i}.internal:5432/cidx failed"),
        format!("redis://:{pass}@cache:6379/0 unreachable"),
        format!("{{\"dsn\": \"mysql://root:{pass}@10.0.0.5/app\"}}"),
    ] {
        out.push(Planted {
            kind: "url_password",
            secret: pass.clone(),
            line,
        });
    }
    let pwd = g.chars(ALNUM, 12);
    for line in [
        format!("odbc: Driver={{SQL Server}};Server=db{i};Uid=sa;Pwd={pwd};Encrypt=yes"),
        format!("Host=db;Username=app;Password={pwd};Database=main"),
        format!("login attempt user=admin password={pwd} from cli"),
    ] {
        out.push(Planted {
            kind: "connection_string",
            secret: pwd.clone(),
            line,
        });
    }
    // review4 F1: everyday shapes that got through. The secret is the piece that leaked (the
    // part of a URL password after its first `@`).
    let (head, tail) = (
        g.chars(ALNUM, 4),
        format!("{}{}", g.chars(ALNUM, 9), g.chars(DIGITS, 3)),
    );
    let k = g.chars(ALNUM, 16);
    let shapes: Vec<(&'static str, String, String)> = vec![
        ("url_password_with_at", tail.clone(), format!("connect failed for postgresql://app:{head}@{tail}@db{i}:5432/app")),
        ("url_password_with_at", tail.clone(), format!("{{\"dsn\":\"redis://:{head}@{tail}@cache{i}:6379/0\",\"to\":\"ops@example.org\"}}")),
        ("escaped_json_password", tail.clone(), format!("bad payload={{\\\"password\\\": \\\"{tail}\\\", \\\"user\\\": \\\"bob{n}\\\"}}")),
        ("escaped_json_password", tail.clone(), format!("{{\"level\":\"error\",\"body\":\"{{\\\"username\\\": \\\"bob\\\", \\\"password\\\": \\\"{tail}\\\"}}\"}}")),
        ("percent_encoded_json", tail.clone(), format!("oauth callback failed state=%7B%22password%22%3A%22{tail}%22%7D attempt {n}")),
        ("percent_encoded_url", tail.clone(), format!("redirect failed next=https%3A%2F%2Fdeploy%3A{tail}%40hooks{i}.example.com%2Fx")),
        ("percent_encoded_form", tail.clone(), format!("GET /sso?next=%2Flogin%3Fuser%3Dbob%26password%3D{tail}%26r%3D{n} 302")),
        ("url_query_key", k.clone(), format!("request failed url=https://api.example.com/v1/charge?key={k}")),
        ("url_query_key", k.clone(), format!("GET /maps/api/geocode/json?address=x&key={k}&n={n} 403")),
        ("named_password", tail.clone(), format!("redis error AUTH failed for password '{tail}'")),
        ("named_password", tail.clone(), format!("smtp login failed: 535 5.7.8 Username and Password not accepted for bob with password {tail}")),
        ("key_material_names", tail.clone(), format!("cfg dump {{\"encryptionKey\": \"{tail}\", \"worker\": {n}}}")),
        ("key_material_names", tail.clone(), format!("cfg dump {{\"hmacKey\": \"{tail}\", \"dbPass\": \"{tail}\", \"passcode\": \"{tail}\"}}")),
    ];
    for (kind, secret, line) in shapes {
        out.push(Planted { kind, secret, line });
    }
    // Passwords without a `key=`: command lines, protocol commands, config shapes. Each at the
    // position its shape puts it, inside a JSON log record, and behind a syslog header.
    let pw = format!("{}{}", g.chars(ALNUM, 10), g.chars(DIGITS, 2));
    for (kind, line) in [
        (
            "mysql_password",
            format!("command failed: mysql -u root -p{pw} -h db{i}"),
        ),
        (
            "mysql_password",
            format!("mysqldump --single-transaction -u backup -p{pw} app_{n}"),
        ),
        (
            "curl_basic_auth",
            format!("curl -u admin:{pw} https://api.internal/health failed"),
        ),
        (
            "cli_password_flag",
            format!("backup failed: pg_dump --password {pw} --host db"),
        ),
        (
            "cli_password_flag",
            format!("restic --password={pw} snapshots exited 1"),
        ),
        (
            "sshpass",
            format!("sshpass -p {pw} ssh deploy@host{i} failed"),
        ),
        (
            "netrc",
            format!("netrc: machine api{i}.example.com login bob password {pw}"),
        ),
        (
            "redis_auth",
            format!("redis AUTH {pw} failed: WRONGPASS invalid username-password pair"),
        ),
        ("redis_auth", format!("redis-cli -h cache{i} -a {pw} ping")),
        ("pass_colon", format!("login failed user=admin pass:{pw}")),
        // Issue #18's second end-to-end check: tools and config files its first corpus lacked.
        (
            "archiver_password",
            format!("backup: 7z a -p{pw} -mhe=on /backups/db{i}.7z exited 2"),
        ),
        (
            "archiver_password",
            format!("zip -P {pw} -r export{i}.zip /data exited 12"),
        ),
        (
            "openssl_password",
            format!("openssl enc -aes-256-cbc -k {pw} -in db{i}.sql failed"),
        ),
        (
            "ipmi_mqtt_password",
            format!("ipmitool -I lanplus -H bmc{i} -U admin -P {pw} chassis status failed"),
        ),
        (
            "ipmi_mqtt_password",
            format!("mosquitto_pub -h mqtt -u sensor -P {pw} -t t{i} -m x: Connection refused"),
        ),
        (
            "snmp_password",
            format!("snmpwalk -v3 -u mon -a SHA -A {pw} -x AES -X {pw} host{i} timeout"),
        ),
        (
            "rdp_password",
            format!("xfreerdp /v:win{i} /u:Administrator /p:{pw} /cert:ignore exited 131"),
        ),
        (
            "lftp_password",
            format!("lftp -u deploy,{pw} sftp://files{i}.internal failed"),
        ),
        (
            "oracle_password",
            format!("sqlplus system/{pw}@ORCL @migrate{i}.sql failed ORA-01017"),
        ),
        (
            "oracle_password",
            format!("jdbc:oracle:thin:scott/{pw}@db{i}:1521:ORCL ORA-12541"),
        ),
        (
            "ldap_bind_password",
            format!("nslcd: bindpw {pw} failed: Invalid credentials (49)"),
        ),
        ("ldap_bind_password", format!("olcRootPW: {pw}")),
        (
            "ldap_bind_password",
            format!("sssd: ldap_default_authtok = {pw}"),
        ),
        (
            "python_environ",
            format!("os.environ['DB_PASSWORD'] = '{pw}' leaked in traceback"),
        ),
        (
            "django_secret_key",
            format!("settings: SECRET_KEY = 'django-insecure-{pw}' is weak"),
        ),
        (
            "xml_password",
            format!("<password>{pw}</password> rejected for user {i}"),
        ),
    ] {
        let json = format!(
            "{{\"level\":\"error\",\"msg\":\"{}\",\"attempt\":{n}}}",
            line.replace('"', "\\\"")
        );
        let syslog = format!(
            "Dec  7 04:00:{:02} app{i} cron[{n}]: {line} (exit 1)",
            n % 60
        );
        for line in [line, json, syslog] {
            out.push(Planted {
                kind,
                secret: pw.clone(),
                line,
            });
        }
    }
    let uuid_key = uuid(g);
    for line in [
        format!("heroku: HEROKU_API_KEY {uuid_key} rejected by api.heroku.com"),
        format!("snyk auth {uuid_key} failed: 401"),
        format!("{{\"msg\":\"api key {uuid_key} revoked\"}}"),
    ] {
        out.push(Planted {
            kind: "keyed_uuid",
            secret: uuid_key.clone(),
            line,
        });
    }
    let app_key = g.chars(HEX, 40);
    for line in [
        format!("DD_APP_KEY={app_key} monitors sync failed"),
        format!("datadog: DD-APPLICATION-KEY: {app_key} forbidden"),
        format!("{{\"dd_app_key\":\"{app_key}\"}}"),
    ] {
        out.push(Planted {
            kind: "datadog_app_key",
            secret: app_key.clone(),
            line,
        });
    }
    let key = g.chars(B64, 86) + "==";
    out.push(Planted {
        kind: "azure_connection_string",
        secret: key.clone(),
        line: format!("DefaultEndpointsProtocol=https;AccountName=logs{i};AccountKey={key};EndpointSuffix=core.windows.net"),
    });
    out
}

/// At least `min` planted secrets of every kind at every placement, deterministic for `seed`.
pub fn secrets(seed: u64, min: usize) -> Vec<Planted> {
    let mut g = Gen(seed);
    let mut out = Vec::new();
    let mut round = 0;
    while out.len() < min {
        for kind in 0..TOKEN_KINDS {
            let (name, value) = token(&mut g, kind);
            if name == "aws_secret_unkeyed" {
                // Its own lines: the keyless form next to nothing but prose.
                out.push(Planted {
                    kind: name,
                    line: format!("credentials loaded: {value}"),
                    secret: value,
                });
                continue;
            }
            let lines = placements(&mut g, &value);
            // Every placement of a kind over the rounds; a few per round keeps the corpus varied.
            for k in 0..4 {
                let line = lines[(round * 4 + k) % lines.len()].clone();
                out.push(Planted {
                    kind: name,
                    secret: value.clone(),
                    line,
                });
            }
        }
        out.extend(own_kind(&mut g, round));
        round += 1;
    }
    out
}

/// Whether `text` still holds `secret` or a piece of it (any 10 characters, for a secret of 16 or
/// more), which a masking step or a partial match could leave behind.
pub fn leaks(text: &str, secret: &str) -> bool {
    if text.contains(secret) {
        return true;
    }
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 16 {
        return false;
    }
    // A piece counts when it could only come from the random part: it holds a digit, or both
    // cases. A piece of a format's fixed scaffolding (`https://ho` of a webhook URL, the
    // `AAAAAAAAAA` of a bearer token) also occurs in lines that hold no secret.
    chars
        .windows(10)
        .filter(|w| {
            w.iter().any(char::is_ascii_digit)
                || (w.iter().any(char::is_ascii_uppercase)
                    && w.iter().any(char::is_ascii_lowercase))
        })
        .any(|w| text.contains(&w.iter().collect::<String>()))
}

/// `n` ordinary server log lines: HTTP access lines, Python tracebacks, git output, SQL errors,
/// hashes, UUIDs, base64 data, paths, and the everyday prose of a service.
pub fn ordinary(seed: u64, n: usize) -> Vec<String> {
    let mut g = Gen(seed);
    let repos = [
        "alpha",
        "beta",
        "gamma",
        "code-indexer",
        "golden/main",
        "docs-site",
    ];
    let users = ["u1", "u42", "alice", "bob", "svc-indexer"];
    let paths = [
        "/api/repos",
        "/api/v1/search",
        "/static/app.9c1e.js",
        "/healthz",
        "/login",
        "/api/v1/jobs",
        "/favicon.ico",
    ];
    let agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "curl/8.4.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
    ];
    let texts = [
        "hello world, this is a test payload",
        "{\"event\":\"push\",\"ref\":\"refs/heads/main\"}",
        "user-agent: indexer/1.2 (linux)",
        "The quick brown fox jumps over the lazy dog",
    ];
    (0..n)
        .map(|i| {
            let repo = g.pick(&repos);
            let user = g.pick(&users);
            let ms = g.below(5000);
            let ip = format!("10.{}.{}.{}", g.below(255), g.below(255), g.below(255));
            match i % 64 {
                0 => format!("{ip} - - [02/Dec/2026:01:{:02}:{:02} +0000] \"GET {}?page={} HTTP/1.1\" 200 {} \"-\" \"{}\"", ms % 60, ms % 60, g.pick(&paths), ms % 30, ms * 7, g.pick(&agents)),
                1 => format!("{ip} - {user} [02/Dec/2026:02:00:{:02} +0000] \"POST /api/v1/jobs HTTP/1.1\" 201 {} \"https://cidx.example.invalid/ui/jobs\" \"{}\"", ms % 60, ms, g.pick(&agents)),
                2 => format!("Traceback (most recent call last):\n  File \"/app/code_indexer/server/app.py\", line {}, in handle\n    result = await self.dispatch(request)\n  File \"/usr/lib/python3.11/site-packages/starlette/routing.py\", line 74, in app\nKeyError: '{repo}'", ms % 900),
                3 => format!("Traceback (most recent call last):\n  File \"/app/worker.py\", line {}, in run\nsqlite3.OperationalError: database is locked", ms % 900),
                4 => format!("[GIT-SYNC-001] git fetch failed for /srv/golden/{repo}: exit status 128"),
                5 => format!("From github.com:org/{repo}\n * branch            main       -> FETCH_HEAD\nUpdating {}..{}\nFast-forward", g.chars(HEX, 7), g.chars(HEX, 7)),
                6 => format!("commit {}\nAuthor: Alice Example\nDate:   Tue Dec 1 10:{:02}:00 2026 +0000\n\n    fix flaky test", g.chars(HEX, 40), ms % 60),
                7 => format!("HEAD is now at {} Merge pull request #{} from org/feature-{}", g.chars(HEX, 7), ms, ms % 50),
                8 => format!("sha {} pushed to refs/heads/main of {repo}", g.chars(HEX, 40)),
                9 => format!("psycopg2.errors.UniqueViolation: duplicate key value violates unique constraint \"jobs_pkey\"\nDETAIL:  Key (id)=({}) already exists.", ms),
                10 => format!("ERROR 1213 (40001): Deadlock found when trying to get lock; try restarting transaction (query: UPDATE repos SET synced_at = NOW() WHERE id = {ms})"),
                11 => format!("slow query took {ms}ms: SELECT * FROM logs WHERE id > {} ORDER BY id LIMIT 10000", g.below(100000)),
                12 => format!("sqlite3.IntegrityError: NOT NULL constraint failed: jobs.repo_alias (row {ms})"),
                13 => format!("downloaded artifact sha256:{} ({} bytes)", g.chars(HEX, 64), ms * 1000),
                14 => format!("ETag: \"{}\" for /static/bundle.js", g.chars(HEX, 32)),
                15 => format!("md5 {} ok for /var/cache/models/{repo}.bin", g.chars(HEX, 32)),
                16 => format!("layer {} already exists", g.chars(HEX, 64)),
                17 => format!("job {} created for repo {repo}", uuid(&mut g)),
                18 => format!("request_id={} user={user} status=500 duration={ms}ms", uuid(&mut g)),
                19 => format!("trace_id={} span_id={} GET /api/v1/search", g.chars(HEX, 32), g.chars(HEX, 16)),
                20 => format!("message body (base64): {}", base64(texts[(ms % 4) as usize].as_bytes())),
                21 => format!("thumbnail data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk{}", g.chars(B64, 20)),
                22 => format!("watcher: file /srv/repos/{repo}/src/server/handlers/request_handler.py changed (inode {})", g.below(1_000_000)),
                23 => format!("open /var/lib/cidx/index/{repo}/segments/segment_{:05}.idx: no such file or directory", ms),
                24 => format!("thread 'worker-{}' panicked at src/index/writer.rs:{}:5: index out of bounds: the len is 3 but the index is 7", ms % 8, ms % 400),
                25 => format!("java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"name\" is null\n\tat com.example.indexer.RepositoryService.refresh(RepositoryService.java:{})\n\tat org.springframework.scheduling.support.ScheduledMethodRunnable.run(ScheduledMethodRunnable.java:84)", ms % 500),
                26 => format!("token expired for user {user}; refresh required"),
                27 => format!("basic authentication is disabled for {repo}"),
                28 => format!("claude usage: input_tokens: {ms} output_tokens: {}", ms / 3),
                29 => format!("clone git@github.com:org/{repo}.git into /var/lib/cidx/repos/{repo}"),
                30 => format!("password reset requested for user {user}"),
                31 => format!("HTTP 429 from https://api.github.com/repos/org/{repo}/issues, retry in {}s", ms % 60),
                32 => format!("secret scanning finished for {repo}: 0 findings"),
                33 => format!("connected to postgresql://db.internal:5432/cidx as {user}"),
                34 => format!("pod deployment-web-frontend-7d9f8b6c5-{} restarted ({} restarts)", g.chars("bcdfghjklmnpqrstvwxz2456789", 5), ms % 9),
                35 => format!("container {} exited with code 137", g.chars(HEX, 12)),
                36 => format!("embedding batch of {} chunks sent to voyage-code-3 in {ms}ms", ms % 128),
                37 => format!("cache hit ratio {}.{}% for shard {}; evicted {} keys", ms % 100, ms % 10, ms % 16, ms),
                38 => format!("auth provider returned 401 for {user}: invalid credentials"),
                // Near review4 F1's shapes: prose after a password word, parser tokens, object
                // names, `key=` outside a URL query, percent-encoded URLs without credentials.
                39 => format!("password reset email sent to {user}; token expired after {}s", ms % 60),
                60 => format!("SyntaxError: Unexpected token '}}' in JSON at position {ms}; Error: secret \"{}-credentials\" not found", repo.replace('/', "-")),
                61 => format!("cache key={repo}:{user}:{} miss; redis GET key=session:{} took {ms}ms", ms % 97, g.chars(HEX, 6)),
                62 => format!("GET /login?next=%2Fdashboard%3Ftab%3Dsettings%26page%3D{} 302; redirect to https%3A%2F%2Fcidx.example.invalid%2Fcallback", ms % 9),
                63 => format!("FATAL: password authentication failed for user \"{user}\"; wrong password for {user}"),
                // Password shapes holding no password.
                40 => format!("running: mysql -u {user} -p -h db{} cidx", ms % 9),
                41 => "Enter password:".to_string(),
                42 => format!("pg_dump --password-file /etc/cidx/{} --host db failed", ms % 9),
                43 => format!("listening: uvicorn app:main --host 0.0.0.0 -p {}", 8000 + ms % 100),
                44 => format!("ssh -p {} deploy@10.0.0.{} exited 255", 2200 + ms % 50, ms % 250),
                45 => format!("redis: AUTH ok ({ms}ms)"),
                46 => format!("config dump: password: ********, user: {user}"),
                47 => format!("connect host=db{} user={user} password=<redacted>", ms % 9),
                48 => format!("Started getty@tty{}.service - Getty on tty{0}.", ms % 6 + 1),
                49 => format!("user@{}.service: Consumed {}.{}s CPU time.", 1000 + ms % 20, ms % 9, ms % 10),
                50 => "docker login -u ci --password-stdin registry.example.invalid".to_string(),
                51 => format!("--- PASS: TestSync{} ({}.{:02}s)", ms % 40, ms % 3, ms % 100),
                // Shapes near the second end-to-end check's rules: joined runs (versions, hosts,
                // class names, URL-encoded text, timestamps) and the new tools without a password.
                52 => format!("pkg {repo}: version 1.{}.{}-rc.{}+build.{ms} installed at 2026-12-07T04:{:02}:{:02}.{:06}Z", ms % 9, ms % 30, ms % 5, ms % 60, ms % 60, ms * 37 % 1_000_000),
                53 => format!("resolved ip-10-0-{}-{}.eu-west-1.compute.internal to {ip} in {ms}ms", ms % 255, ms % 200),
                54 => format!("GET /api/v1/search?q=hello%20world%3A{ms}%2Fsrc&lang=en HTTP/1.1 200 {}", ms * 3),
                55 => format!("\tat org.apache.kafka.clients.consumer.internals.ConsumerCoordinator.onJoinComplete(ConsumerCoordinator.java:{})", ms % 900),
                56 => format!("ldap: bind as cn=svc-{user},ou=services,dc=example,dc=org ok; snmpwalk -v2c -c public host{} timed out", ms % 9),
                57 => format!("zip -r export{ms}.zip /data exited 0; 7z l /backups/db{}.7z listed; ipmitool -H bmc{} chassis status ok", ms % 9, ms % 9),
                58 => format!("jdbc:oracle:thin:@db{}:1521:ORCL connected; sqlplus -S /nolog @report.sql ok; session key rotated for job {}", ms % 9, uuid(&mut g)),
                59 => format!("cache key {}:{}:v2 miss; $HOME/.cache/{repo}/index.{}.bin loaded", repo, user, g.chars(HEX, 8)),
                _ => format!("health check ok: {} jobs queued, {} running, {} MiB rss", ms % 10, ms % 3, ms % 800),
            }
        })
        .collect()
}

fn uuid(g: &mut Gen) -> String {
    format!(
        "{}-{}-4{}-a{}-{}",
        g.chars(HEX, 8),
        g.chars(HEX, 4),
        g.chars(HEX, 3),
        g.chars(HEX, 3),
        g.chars(HEX, 12)
    )
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
