//! The command line against the real server binary: each test starts `servicecatalog serve` on a
//! free port and a temporary data directory, imports its administrator key with `configure
//! import-root`, and runs the CLI as a user would. Answers are compared with raw signed calls;
//! HTTPS goes through a TLS terminator in the test process with a certificate of a CA made here;
//! the provisioning tests need `terraform` (or `tofu`) on PATH and are skipped, with a notice,
//! without one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde_json::{json, Value};
use servicecatalog::protocol::percent_encode;
use servicecatalog::protocol::signature::{v3_canonical_request, V3Algorithm::HmacSha256};

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
            ("x-acs-content-sha256", HmacSha256.hashed_payload(body.as_bytes())),
            ("x-acs-date", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            ("x-acs-signature-nonce", format!("{:032x}", rand::random::<u128>())),
            ("x-acs-version", "2021-09-01".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
        let canonical = v3_canonical_request("POST", &[], &headers, &signed, &HmacSha256.hashed_payload(body.as_bytes()));
        let signature = HmacSha256.sign(&secret, &HmacSha256.string_to_sign(&canonical)).to_hex();
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

    // A second profile pointing nowhere does not become current by being written; `configure
    // switch` makes it current; --profile and the environment pick between them.
    let other =
        server.ok(&["configure", "--profile", "other", "--endpoint", "127.0.0.1:1", "--access-key-id", "x", "--access-key-secret", "y"]);
    assert!(other.contains("The current profile is still default; `servicecatalog configure switch other`"), "{other}");
    server.ok_json(&["ListRegions"]);
    assert_eq!(server.ok(&["configure", "switch", "other"]).trim(), "other is now the current profile.");
    assert_eq!(server.run(&["ListRegions"]).status.code(), Some(3));
    assert!(server.ok(&["configure", "list"]).lines().any(|l| l.starts_with("*  other")));
    server.ok_json(&["ListRegions", "--profile", "default"]);
    let by_env = server.cli(&["ListRegions"]).env("SERVICECATALOG_PROFILE", "default").output().unwrap();
    assert!(by_env.status.success());
    let unknown = server.run(&["configure", "switch", "nobody"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("default, other"), "{}", text(&unknown.stderr));
}

#[test]
fn tables_say_when_they_are_cut_and_all_and_query_shape_the_answer() {
    let server = Server::start(false);
    server.import_root();
    for name in ["alpha", "beta", "gamma"] {
        server.ok(&["CreatePortfolio", "--PortfolioName", name, "--ProviderName", "p"]);
    }
    let cut = server.run(&["ListPortfolios", "--PageSize", "2", "--output", "table"]);
    assert!(cut.status.success());
    assert_eq!(text(&cut.stdout).lines().count(), 3, "{}", text(&cut.stdout));
    assert!(text(&cut.stderr).contains("showing 2 of 3 rows (page 1): --all fetches every page"), "{}", text(&cut.stderr));
    let all = server.run(&["ListPortfolios", "--PageSize", "2", "--output", "cols=PortfolioName", "--SortOrder", "Asc", "--all"]);
    assert_eq!(text(&all.stdout), "PortfolioName\nalpha\nbeta\ngamma\n");
    assert!(all.stderr.is_empty(), "{}", text(&all.stderr));

    let unknown = server.run(&["ListPortfolios", "--output", "cols=PortfolioName,Foo"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains(r#"no column "Foo"; its columns are "#), "{}", text(&unknown.stderr));
    assert!(text(&unknown.stderr).contains("PortfolioId") && unknown.stdout.is_empty());

    let names = server.ok_json(&[
        "ListPortfolios",
        "--all",
        "--PageSize",
        "1",
        "--SortOrder",
        "Asc",
        "--query",
        "PortfolioDetails[].PortfolioName",
    ]);
    assert_eq!(names, json!(["alpha", "beta", "gamma"]));
    let picked =
        server.ok(&["ListPortfolios", "--query", "PortfolioDetails[?PortfolioName=='beta'].{Name: PortfolioName}", "--output", "table"]);
    assert_eq!(picked, "Name\nbeta\n");
    let invalid = server.run(&["ListPortfolios", "--query", "PortfolioDetails[?"]);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(text(&invalid.stderr).contains("--query"), "{}", text(&invalid.stderr));
}

#[test]
fn action_help_shows_forms_defaults_and_allowed_values() {
    let server = Server::start(false);
    let help = server.ok(&["ListProductsAsEndUser", "--help"]);
    assert!(help.contains("[--all]") && help.contains("[--query EXPR]") && help.contains("[--ca-bundle PATH]"), "{help}");
    let sort_order = help.lines().find(|l| l.trim_start().starts_with("--SortOrder")).unwrap();
    assert!(sort_order.ends_with("string, default Desc (Asc|Desc)"), "{sort_order}");
    // What the action and each parameter are, from the spec's descriptions.
    assert!(help.contains("ListProductsAsEndUser (HTTP POST): Lists the products an end user is granted"), "{help}");
    let lines: Vec<&str> = help.lines().collect();
    let at = lines.iter().position(|l| l.trim_start().starts_with("--PageSize")).unwrap();
    assert_eq!(lines[at + 1].trim(), "Rows per page, 1 to 100 (default 10).");
    let actions = server.ok(&["actions"]);
    assert!(actions.lines().any(|l| l.starts_with("CreatePortfolio") && l.ends_with("Creates a portfolio.")), "{actions}");
}

/// A pipe whose reading end is already closed, as `… | head` leaves it.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let server = Server::start(false);
    server.import_root();
    let quiet = |args: &[&str]| {
        let pipe = closed_pipe();
        server.cli(args).stdout(pipe.try_clone().unwrap()).stderr(pipe).status().unwrap().code()
    };
    assert_eq!(quiet(&["ListRegions"]), Some(0));
    assert_eq!(quiet(&["ListRegions", "--output", "table"]), Some(0));
    assert_eq!(quiet(&["completion", "bash"]), Some(0));
    // An error whose message cannot be shown keeps its exit code.
    assert_eq!(quiet(&["GetPortfolio", "--PortfolioId", "port-none"]), Some(1));
}

/// A self-signed CA and a certificate it signed for 127.0.0.1: (the CA's PEM, the TLS server's
/// configuration).
fn private_ca() -> (String, tokio_rustls::rustls::ServerConfig) {
    use tokio_rustls::rustls;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "servicecatalog test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.der().clone()], rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der()).into())
        .unwrap();
    (ca.pem(), config)
}

/// Terminates TLS on a free port and forwards each connection to `backend`; returns the port.
fn tls_terminator(config: tokio_rustls::rustls::ServerConfig, backend: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    if let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
            }
        })
    });
    port
}

#[test]
fn https_endpoints_are_verified_with_the_ca_bundle() {
    let server = Server::start(false);
    server.import_root();
    let (ca_pem, config) = private_ca();
    let ca = server.dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let ca = ca.to_str().unwrap();
    let endpoint = format!("https://127.0.0.1:{}", tls_terminator(config, server.port));

    let untrusted = server.run(&["ListRegions", "--endpoint", &endpoint]);
    assert_eq!(untrusted.status.code(), Some(3));
    let stderr = text(&untrusted.stderr);
    assert!(stderr.contains("certificate") && stderr.contains("pass that CA with --ca-bundle PATH"), "{stderr}");

    let regions = server.ok_json(&["ListRegions", "--endpoint", &endpoint, "--ca-bundle", ca]);
    assert!(regions["Regions"].as_array().is_some_and(|r| !r.is_empty()), "{regions}");
    let by_env = server.cli(&["ListRegions", "--endpoint", &endpoint]).env("SERVICECATALOG_CA_BUNDLE", ca).output().unwrap();
    assert!(by_env.status.success(), "{}", text(&by_env.stderr));

    // In a profile, for the helpers too.
    let (id, secret) = server.root_key();
    let shown = server.ok(&[
        "configure",
        "--profile",
        "tls",
        "--endpoint",
        &endpoint,
        "--access-key-id",
        &id,
        "--access-key-secret",
        &secret,
        "--ca-bundle",
        ca,
    ]);
    assert!(shown.contains(&format!("CA bundle:       {ca}")), "{shown}");
    server.ok_json(&["ListPortfolios", "--profile", "tls", "--all"]);
    let no_product = server.run(&["launch", "nothing", "--name", "n", "--profile", "tls"]);
    assert_eq!(no_product.status.code(), Some(2), "{}", text(&no_product.stderr));
    assert!(text(&no_product.stderr).contains("you can launch no product"));

    let missing = server.run(&["ListRegions", "--endpoint", &endpoint, "--ca-bundle", "/nonexistent/ca.pem"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot use the CA bundle /nonexistent/ca.pem"), "{}", text(&missing.stderr));
}

/// Runs the bash completion function on `words` (the last one being completed) with the binary on
/// PATH; returns the candidates, one per line.
fn bash_complete(server: &Server, words: &[&str]) -> String {
    let script = server.ok(&["completion", "bash"]);
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "{script}\nCOMP_WORDS=(servicecatalog {})\nCOMP_CWORD={}\n_servicecatalog\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        quoted.join(" "),
        words.len()
    );
    let path = format!("{}:{}", Path::new(BIN).parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let mut bash = Command::new("bash");
    clean_env(&mut bash);
    let out = bash
        .arg("-c")
        .arg(program)
        .env("PATH", path)
        .env("HOME", server.dir.path().join("home"))
        .env("SERVICECATALOG_CONFIG", server.config())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn completion_offers_profiles_allowed_values_and_product_names() {
    let server = Server::start(true);
    server.import_root();
    server.ok(&["configure", "--profile", "second", "--endpoint", "127.0.0.1:1", "--access-key-id", "x", "--access-key-secret", "y"]);
    assert_eq!(bash_complete(&server, &["ListPortfolios", "--SortOrder", ""]), "Asc\nDesc\n");
    assert_eq!(bash_complete(&server, &["ListPortfolios", "--output", ""]), "json\ntable\ncols=\n");
    assert_eq!(bash_complete(&server, &["ListRegions", "--profile", ""]), "default\nsecond\n");
    assert_eq!(bash_complete(&server, &["configure", "switch", "s"]), "second\n");
    assert_eq!(bash_complete(&server, &["completion", "f"]), "fish\n");
    let products = bash_complete(&server, &["launch", "Hello"]);
    assert!(products.lines().any(|l| l == "Hello\\ outputs"), "{products}");
    assert_eq!(bash_complete(&server, &["GetPortfolio", "--Portfolio"]), "--PortfolioId\n");
    assert_eq!(server.ok(&["__complete", "profiles"]), "default\nsecond\n");
    assert!(server.ok(&["__complete", "products"]).lines().any(|l| l == "Hello outputs"));
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
fn launch_update_and_terminate_wait_for_their_tasks() {
    if !have_terraform("launch_update_and_terminate_wait_for_their_tasks") {
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

    let updated = server.ok(&["update", "hello-cli", "-p", "name=again", "--wait"]);
    assert_eq!(updated.lines().next(), Some(pp_id), "{updated}");
    assert!(updated.contains("Succeeded") && updated.contains("greeting = Hello, again!"), "{updated}");
    let missing = server.run(&["update", "hello-cl", "-p", "name=x"]);
    assert_eq!(missing.status.code(), Some(2));
    let stderr = text(&missing.stderr);
    assert!(stderr.contains(r#"you have no provisioned product with the id or name "hello-cl": did you mean hello-cli?"#), "{stderr}");
    let terminated = server.ok(&["terminate", "hello-cli", "--wait"]);
    assert!(terminated.starts_with(pp_id) && terminated.contains("Succeeded"), "{terminated}");
    let gone = server.run(&["GetProvisionedProduct", "--ProvisionedProductId", pp_id]);
    assert_eq!(gone.status.code(), Some(1), "{}", text(&gone.stdout));

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

    // Into a closed pipe (`tasks watch ID | head`) the watch stops at once, quietly.
    let pipe = closed_pipe();
    let closed = server.cli(&["tasks", "watch", &task_id]).stdout(pipe.try_clone().unwrap()).stderr(pipe).status().unwrap();
    assert_eq!(closed.code(), Some(0));
    let task = server.ok_json(&["GetTask", "--TaskId", &task_id]);
    assert_eq!(task["TaskDetail"]["Status"], "InProgress", "the watch followed the task into a closed pipe");

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
