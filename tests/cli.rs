//! The command line against the real server binary: each test starts `servicecatalog serve` on a
//! free port and a temporary data directory, imports its administrator key with `configure
//! import-root`, and runs the CLI as a user would. Answers are compared with raw signed calls;
//! the provisioning tests need `terraform` (or `tofu`) on PATH and are skipped, with a notice,
//! without one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use servicecatalog::protocol::percent_encode;
use servicecatalog::protocol::signature::{hashed_payload, v3_canonical_request, v3_sign, v3_string_to_sign};

const BIN: &str = env!("CARGO_BIN_EXE_servicecatalog");

/// A running server with its own data directory and CLI configuration file.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(sample_catalog: bool) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut command = Command::new(BIN);
        command.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"]).arg(dir.path().join("data"));
        if sample_catalog {
            command.arg("--sample-catalog");
        }
        clean_env(&mut command);
        let child = command.stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
        let mut server = Server { child, port, dir };
        server.wait_healthy();
        server
    }

    /// Polls /healthz a bounded number of times; fails with the server's log if it never answers.
    fn wait_healthy(&mut self) {
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the server exited ({status}):\n{}", self.log());
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut answer = String::new();
                let _ = stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n").and_then(|()| stream.read_to_string(&mut answer));
                if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server never became healthy:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("home").join(".servicecatalog").join("config.json")
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CLI, with a configuration file and HOME of its own.
    fn cli(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.args(args);
        clean_env(&mut command);
        command.env("HOME", self.dir.path().join("home")).env("SERVICECATALOG_CONFIG", self.config());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cli(args).output().unwrap()
    }

    /// Runs the CLI, expects success and returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed ({}): {}\nserver log:\n{}", out.status, text(&out.stderr), self.log());
        text(&out.stdout)
    }

    fn ok_json(&self, args: &[&str]) -> Value {
        let stdout = self.ok(args);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {stdout}"))
    }

    fn import_root(&self) {
        self.ok(&["configure", "import-root", "--data-dir", self.data_dir().to_str().unwrap(), "--endpoint", &self.endpoint()]);
    }

    fn root_key(&self) -> (String, String) {
        let root: Value = serde_json::from_slice(&std::fs::read(self.data_dir().join("root-credentials.json")).unwrap()).unwrap();
        (root["AccessKeyId"].as_str().unwrap().to_string(), root["AccessKeySecret"].as_str().unwrap().to_string())
    }

    /// A POST call signed here, independently of the CLI's client: the raw API answer.
    fn raw_call(&self, action: &str, params: &[(&str, &str)]) -> Value {
        let (id, secret) = self.root_key();
        let body = params.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&");
        let mut headers: Vec<(String, String)> = [
            ("content-type", "application/x-www-form-urlencoded".to_string()),
            ("host", self.endpoint()),
            ("x-acs-action", action.to_string()),
            ("x-acs-content-sha256", hashed_payload(body.as_bytes())),
            ("x-acs-date", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            ("x-acs-signature-nonce", format!("{:032x}", rand::random::<u128>())),
            ("x-acs-version", "2021-09-01".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
        let canonical = v3_canonical_request("POST", &[], &headers, &signed, &hashed_payload(body.as_bytes()));
        let signature = v3_sign(&secret, &v3_string_to_sign(&canonical)).to_hex();
        headers.push((
            "authorization".into(),
            format!("ACS3-HMAC-SHA256 Credential={id},SignedHeaders={},Signature={signature}", signed.join(";")),
        ));
        let mut request = String::from("POST / HTTP/1.1\r\nconnection: close\r\n");
        for (k, v) in &headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, json) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
        serde_json::from_str(json).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Leaves out the caller's servicecatalog settings and proxies, which would redirect the test.
fn clean_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().to_string();
        if name.starts_with("SERVICECATALOG_") || name.to_ascii_lowercase().ends_with("_proxy") {
            command.env_remove(name);
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn without_request_id(mut value: Value) -> Value {
    value.as_object_mut().unwrap().remove("RequestId");
    value
}

/// Whether Terraform (or OpenTofu) is on PATH; prints a skip notice when not.
fn have_terraform(test: &str) -> bool {
    let found = ["terraform", "tofu"]
        .iter()
        .any(|tf| Command::new(tf).arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success()));
    if !found {
        eprintln!("skipping {test}: neither terraform nor tofu is on PATH");
    }
    found
}

#[test]
fn list_regions_and_portfolios_print_the_api_answer() {
    let server = Server::start(false);
    server.import_root();
    let regions = server.ok_json(&["ListRegions"]);
    assert!(regions["Regions"].as_array().unwrap().iter().any(|r| r["RegionId"] == "cn-hangzhou"), "{regions}");
    assert!(regions["RequestId"].is_string());

    let created =
        server.ok_json(&["CreatePortfolio", "--PortfolioName", "Team tools", "--ProviderName", "platform", "--Description=For the team"]);
    let id = created["PortfolioId"].as_str().unwrap();
    let from_cli = server.ok_json(&["GetPortfolio", "--PortfolioId", id]);
    let raw = server.raw_call("GetPortfolio", &[("PortfolioId", id)]);
    assert_eq!(without_request_id(from_cli.clone()), without_request_id(raw));
    assert_eq!(from_cli["PortfolioDetail"]["Description"], "For the team");

    server.ok(&["CreatePortfolio", "--PortfolioName", "Second", "--ProviderName", "platform"]);
    let table = server.ok(&["ListPortfolios", "--output", "table"]);
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("PortfolioId") && header.contains("PortfolioName"), "{table}");
    assert!(table.lines().any(|l| l.starts_with(id) && l.contains("Team tools")), "{table}");
    let all = server.ok_json(&["ListPortfolios", "--PageSize", "1", "--pager"]);
    assert_eq!(all["PortfolioDetails"].as_array().unwrap().len(), 2, "{all}");
    assert_eq!(all["TotalCount"], 2);
    let cols = server.ok(&["ListPortfolios", "--output", "cols=PortfolioName", "--SortOrder", "Asc"]);
    assert_eq!(cols.trim_end(), "PortfolioName\nTeam tools\nSecond");
}

#[test]
fn flattened_and_json_parameters_reach_the_server() {
    let server = Server::start(false);
    server.import_root();
    for name in ["alpha", "beta"] {
        server.ok(&["CreatePortfolio", "--PortfolioName", name, "--ProviderName", "p"]);
    }
    let typed = server.ok_json(&["ListPortfolios", "--Filters.1.Key", "PortfolioName", "--Filters.1.Value", "alpha"]);
    let json_form = server.ok_json(&["ListPortfolios", "--Filters", r#"[{"Key":"PortfolioName","Value":"alpha"}]"#]);
    assert_eq!(typed["TotalCount"], 1, "{typed}");
    assert_eq!(typed["PortfolioDetails"], json_form["PortfolioDetails"]);
    assert_eq!(typed["PortfolioDetails"][0]["PortfolioName"], "alpha");
}

#[test]
fn errors_exit_with_their_code_and_message() {
    let server = Server::start(false);
    server.import_root();
    let missing = server.run(&["GetPortfolio", "--PortfolioId", "port-doesnotexist"]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = text(&missing.stderr);
    assert!(stderr.contains("EntityNotExists.Portfolio") && stderr.contains("port-doesnotexist"), "{stderr}");
    assert!(missing.stdout.is_empty());

    let unknown = server.run(&["GetPortfolo", "--PortfolioId", "x"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("GetPortfolio"), "{}", text(&unknown.stderr));
    let bad_param = server.run(&["GetPortfolio", "--PortfolioID", "x"]);
    assert_eq!(bad_param.status.code(), Some(2));
    assert!(text(&bad_param.stderr).contains("--PortfolioId"));

    let wrong_secret = server.cli(&["ListRegions"]).env("SERVICECATALOG_ACCESS_KEY_SECRET", "not-the-secret").output().unwrap();
    assert_eq!(wrong_secret.status.code(), Some(1));
    assert!(text(&wrong_secret.stderr).contains("SignatureDoesNotMatch"), "{}", text(&wrong_secret.stderr));

    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let unreachable = server.run(&["ListRegions", "--endpoint", &format!("127.0.0.1:{closed}")]);
    assert_eq!(unreachable.status.code(), Some(3));
    assert!(text(&unreachable.stderr).contains("cannot call"), "{}", text(&unreachable.stderr));
}

#[test]
fn configure_import_root_writes_a_private_profile_and_never_prints_the_secret() {
    let server = Server::start(false);
    let (id, secret) = server.root_key();
    let shown =
        server.ok(&["configure", "import-root", "--data-dir", server.data_dir().to_str().unwrap(), "--endpoint", &server.endpoint()]);
    assert!(shown.contains(&id) && shown.contains(&format!("****{}", &secret[secret.len() - 4..])), "{shown}");
    assert!(!shown.contains(&secret));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&server.config()), 0o600);
    assert_eq!(mode(server.config().parent().unwrap()), 0o700);
    let listed = server.ok(&["configure", "list"]);
    assert!(listed.contains("default") && !listed.contains(&secret), "{listed}");
    server.ok_json(&["ListRegions"]);

    // A second profile pointing nowhere; --profile and the environment pick between them.
    server.ok(&["configure", "--profile", "other", "--endpoint", "127.0.0.1:1", "--access-key-id", "x", "--access-key-secret", "y"]);
    assert_eq!(server.run(&["ListRegions"]).status.code(), Some(3));
    server.ok_json(&["ListRegions", "--profile", "default"]);
    let by_env = server.cli(&["ListRegions"]).env("SERVICECATALOG_PROFILE", "default").output().unwrap();
    assert!(by_env.status.success());
}

#[test]
fn completion_scripts_name_the_actions() {
    let server = Server::start(false);
    for shell in ["bash", "zsh", "fish"] {
        let script = server.ok(&["completion", shell]);
        assert!(script.contains("LaunchProduct") && script.contains("ProvisionedProductName") && script.contains("GetTaskLog"), "{shell}");
    }
}

#[test]
fn launch_wait_follows_the_sample_product_to_its_outputs() {
    if !have_terraform("launch_wait_follows_the_sample_product_to_its_outputs") {
        return;
    }
    let server = Server::start(true);
    server.import_root();
    let out = server.ok(&["launch", "Hello outputs", "--name", "hello-cli", "-p", "name=CLI", "--wait"]);
    let pp_id = out.lines().next().unwrap();
    assert!(pp_id.starts_with("pp-"), "{out}");
    assert!(out.contains("==> terraform apply") && out.contains("Succeeded") && out.contains("greeting = Hello, CLI!"), "{out}");
    let pp = server.ok_json(&["GetProvisionedProduct", "--ProvisionedProductId", pp_id]);
    assert_eq!(pp["ProvisionedProductDetail"]["Status"], "Available");

    let failed = server.run(&["launch", "Hello outputs", "--name", "hello-bad", "-p", "repeat=20", "--wait"]);
    assert_eq!(failed.status.code(), Some(4), "{}", text(&failed.stderr));
    assert!(text(&failed.stderr).contains("The repeat value must be between 1 and 10"), "{}", text(&failed.stderr));
    assert!(text(&failed.stdout).contains("Failed"));
}

#[test]
fn tasks_watch_prints_log_lines_while_the_task_runs() {
    if !have_terraform("tasks_watch_prints_log_lines_while_the_task_runs") {
        return;
    }
    if !Path::new(BIN).with_file_name("terraform-provider-sandbox").is_file() {
        eprintln!("skipping tasks_watch_prints_log_lines_while_the_task_runs: build the sandbox provider (cargo build --release -p terraform-provider-sandbox)");
        return;
    }
    let server = Server::start(false);
    server.import_root();
    let main_tf = r#"
terraform {
  required_providers {
    sandbox = { source = "servicecatalog.local/demo/sandbox", version = "0.1.0" }
  }
}
provider "sandbox" {}
resource "sandbox_sleep" "slow" {
  duration_ms = 5000
}
"#;
    let body = json!({"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.0", "Workspace": {"main.tf": main_tf}})
        .to_string();
    let template = server.ok_json(&["CreateTemplate", "--TemplateType", "RosTerraformTemplate", "--TemplateBody", &body]);
    let version = json!({
        "ProductVersionName": "v1", "TemplateType": "RosTerraformTemplate",
        "TemplateUrl": template["TemplateUrl"], "Guidance": "Recommended", "Active": true,
    })
    .to_string();
    let product = server.ok_json(&[
        "CreateProduct",
        "--ProductName",
        "Slow",
        "--ProviderName",
        "tests",
        "--ProductType",
        "Ros",
        "--TemplateType",
        "RosTerraformTemplate",
        "--ProductVersionParameters",
        &version,
    ]);
    let product_id = product["ProductId"].as_str().unwrap();
    let portfolio = server.ok_json(&["CreatePortfolio", "--PortfolioName", "Slow things", "--ProviderName", "tests"]);
    let portfolio_id = portfolio["PortfolioId"].as_str().unwrap();
    server.ok(&["AssociateProductWithPortfolio", "--ProductId", product_id, "--PortfolioId", portfolio_id]);
    server.ok(&["AssociatePrincipalWithPortfolio", "--PortfolioId", portfolio_id, "--PrincipalType", "RamUser", "--PrincipalPattern", "*"]);

    let pp_id = server.ok(&["launch", "Slow", "--name", "slow-1"]).trim().to_string();
    let pp = server.ok_json(&["GetProvisionedProduct", "--ProvisionedProductId", &pp_id]);
    let task_id = pp["ProvisionedProductDetail"]["LastTaskId"].as_str().unwrap().to_string();

    let mut watch = server.cli(&["tasks", "watch", &task_id]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The sleep resource starts creating, then waits: the line must be out before the task ends.
    let mut seen = Vec::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no 'Creating...' line; saw {seen:?}\n{}", server.log()));
        let creating = line.contains("sandbox_sleep.slow: Creating...");
        seen.push(line);
        if creating {
            break;
        }
    }
    let task = server.ok_json(&["GetTask", "--TaskId", &task_id]);
    assert_eq!(task["TaskDetail"]["Status"], "InProgress", "the task ended before its log was shown: {seen:?}");
    let rest: Vec<String> = lines.iter().collect();
    let status = watch.wait().unwrap();
    assert!(status.success(), "watch failed: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("Succeeded")), "{rest:?}");
    assert!(seen.iter().any(|l| l == "==> terraform apply"), "{seen:?}");
}
