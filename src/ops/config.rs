//! The configuration file (`--config FILE` or `SERVICECATALOG_CONFIG_FILE`): TOML whose keys are
//! the long flags of `serve` and `worker` (`listen = "0.0.0.0:8080"`, `workers = 4`,
//! `log-json = true`, `regions = ["cn-hangzhou"]`). Its values become the flags' defaults before
//! the command line is parsed, so the precedence is flags > environment > file > built-in
//! defaults, on every subcommand that has the flag (`data-dir` reaches `users` and `backup`
//! too). Unknown keys and nested tables are refused. `serve --print-config` shows the effective
//! settings with their sources, secrets redacted.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{ArgMatches, Command};

/// Environment variable naming the configuration file.
pub const ENV: &str = "SERVICECATALOG_CONFIG_FILE";

/// Subcommands whose flags the file may set.
const CONFIGURED: &[&str] = &["serve", "worker"];

/// Flags that are not settings.
const NOT_SETTINGS: &[&str] = &["help", "version", "config", "print-config"];

/// Keys whose values are secret when printed.
const SECRET_KEYS: &[&str] = &["database"];

/// The parsed command line and what the file contributed.
pub struct Loaded {
    matches: ArgMatches,
    command: Command,
    file: Option<PathBuf>,
    from_file: BTreeMap<String, String>,
}

/// Parses the process's command line into `C`, with the configuration file's values as defaults.
/// Exits like clap on `--help` and usage errors.
pub fn parse<C: clap::Parser>() -> anyhow::Result<(C, Loaded)> {
    parse_from::<C>(std::env::args_os().collect(), std::env::var_os(ENV))
}

fn parse_from<C: clap::Parser>(args: Vec<OsString>, env_file: Option<OsString>) -> anyhow::Result<(C, Loaded)> {
    let file = config_flag(&args).or(env_file.filter(|f| !f.is_empty()).map(PathBuf::from));
    let mut command = C::command();
    let mut from_file = BTreeMap::new();
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        from_file = settings(&text, &known_keys(&command)).with_context(|| format!("invalid configuration file {}", path.display()))?;
        command = with_defaults(command, &from_file);
    }
    let matches = command.clone().get_matches_from(args);
    let cli = C::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    Ok((cli, Loaded { matches, command, file, from_file }))
}

/// The value of `--config FILE` or `--config=FILE`, if given.
fn config_flag(args: &[OsString]) -> Option<PathBuf> {
    let mut words = args.iter().skip(1);
    while let Some(word) = words.next() {
        let word = word.to_string_lossy();
        if word == "--" {
            return None;
        }
        if word == "--config" {
            return words.next().map(PathBuf::from);
        }
        if let Some(value) = word.strip_prefix("--config=") {
            return Some(PathBuf::from(value));
        }
    }
    None
}

/// Long flags of the configured subcommands.
fn known_keys(command: &Command) -> Vec<String> {
    let mut keys: Vec<String> = command
        .get_subcommands()
        .filter(|sub| CONFIGURED.contains(&sub.get_name()))
        .flat_map(|sub| sub.get_arguments().filter_map(|a| a.get_long().map(str::to_string)).collect::<Vec<_>>())
        .filter(|long| !NOT_SETTINGS.contains(&long.as_str()))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The file's settings as flag values (arrays joined with commas), refusing unknown keys.
fn settings(text: &str, known: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let table: toml::Table = text.parse()?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        if !known.contains(&key) {
            bail!("unknown key {key:?}; the keys are the long flags of serve and worker: {}", known.join(", "));
        }
        let scalar = |v: &toml::Value| -> anyhow::Result<String> {
            Ok(match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => bail!("the value of {key:?} must be a string, a number, a boolean or an array of them"),
            })
        };
        let value = match &value {
            toml::Value::Array(items) => items.iter().map(scalar).collect::<anyhow::Result<Vec<_>>>()?.join(","),
            other => scalar(other)?,
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// Sets the file's values as the defaults of every subcommand flag with the same long name.
fn with_defaults(mut command: Command, values: &BTreeMap<String, String>) -> Command {
    let names: Vec<String> = command.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for name in names {
        command = command.mut_subcommand(&name, |mut sub| {
            let ids: Vec<(String, String)> =
                sub.get_arguments().filter_map(|a| Some((a.get_id().to_string(), values.get(a.get_long()?)?.clone()))).collect();
            for (id, value) in ids {
                sub = sub.mut_arg(id, |a| a.default_value(value));
            }
            sub
        });
    }
    command
}

impl Loaded {
    /// The effective settings of `subcommand` as TOML, each with its source; secrets redacted.
    pub fn print(&self, subcommand: &str) -> String {
        let (Some(matches), Some(command)) = (self.matches.subcommand_matches(subcommand), self.command.find_subcommand(subcommand)) else {
            return String::new();
        };
        let mut out = match &self.file {
            Some(path) => format!("# configuration file: {}\n", path.display()),
            None => "# no configuration file\n".to_string(),
        };
        for arg in command.get_arguments() {
            let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else { continue };
            if NOT_SETTINGS.contains(&long) {
                continue;
            }
            let Some(raw) = matches.get_raw(id) else {
                out.push_str(&format!("# {long} is not set\n"));
                continue;
            };
            let value = raw.map(|v| v.to_string_lossy().into_owned()).collect::<Vec<_>>().join(",");
            let value = if SECRET_KEYS.contains(&long) { super::data::redact_url(&value) } else { value };
            let source = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "environment",
                _ if self.from_file.contains_key(long) => "file",
                _ => "default",
            };
            out.push_str(&format!("{long} = {}  # {source}\n", toml_value(&value)));
        }
        for secret in ["SERVICECATALOG_MASTER_KEY", "SERVICECATALOG_ROOT_ACCESS_KEY_SECRET"] {
            if std::env::var_os(secret).is_some_and(|v| !v.is_empty()) {
                out.push_str(&format!("# {secret} is set (redacted)\n"));
            }
        }
        out
    }
}

/// A flag value written as a TOML value.
fn toml_value(value: &str) -> String {
    if value.parse::<i64>().is_ok() || value.parse::<f64>().is_ok_and(f64::is_finite) || value == "true" || value == "false" {
        value.to_string()
    } else {
        // A JSON string is a valid TOML basic string.
        serde_json::Value::String(value.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Sub {
        Serve {
            #[arg(long, env = "SC_CONFIG_TEST_LISTEN", default_value = "127.0.0.1:8080")]
            listen: String,
            #[arg(long, default_value_t = 2)]
            workers: usize,
            #[arg(long)]
            log_json: bool,
            #[arg(long, value_delimiter = ',', default_value = "a,b")]
            regions: Vec<String>,
            #[arg(long)]
            database: Option<String>,
            #[arg(long)]
            print_config: bool,
        },
        Users {
            #[arg(long, default_value_t = 2)]
            workers: usize,
        },
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sc.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn args(words: &[&str]) -> Vec<OsString> {
        std::iter::once("sc").chain(words.iter().copied()).map(OsString::from).collect()
    }

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let (_d, path) = write("workers = 7\nlog-json = true\nregions = [\"x\", \"y\"]\nlisten = \"0.0.0.0:1\"\n");
        let p = path.to_str().unwrap();
        let (cli, loaded) = parse_from::<Cli>(args(&["serve", "--config", p, "--workers", "3"]), None).unwrap();
        let Sub::Serve { listen, workers, log_json, regions, .. } = cli.command else { panic!() };
        assert_eq!((listen.as_str(), workers, log_json, regions), ("0.0.0.0:1", 3, true, vec!["x".to_string(), "y".to_string()]));
        let printed = loaded.print("serve");
        assert!(printed.contains("workers = 3  # flag") && printed.contains("listen = \"0.0.0.0:1\"  # file"), "{printed}");
        // the file named by the environment, and applied to other subcommands with the same flag
        let (cli, _) = parse_from::<Cli>(args(&["users"]), Some(path.clone().into())).unwrap();
        assert!(matches!(cli.command, Sub::Users { workers: 7 }));
    }

    #[test]
    fn the_environment_beats_the_file() {
        let (_d, path) = write("listen = \"0.0.0.0:1\"\n");
        std::env::set_var("SC_CONFIG_TEST_LISTEN", "10.0.0.1:2");
        let (cli, loaded) = parse_from::<Cli>(args(&["serve", &format!("--config={}", path.display())]), None).unwrap();
        std::env::remove_var("SC_CONFIG_TEST_LISTEN");
        assert!(matches!(cli.command, Sub::Serve { ref listen, .. } if listen == "10.0.0.1:2"));
        assert!(loaded.print("serve").contains("# environment"));
    }

    #[test]
    fn unknown_keys_and_tables_are_refused_and_secrets_redacted() {
        let (_d, path) = write("listne = \"x\"\n");
        let e = parse_from::<Cli>(args(&["serve"]), Some(path.into())).err().unwrap();
        assert!(format!("{e:#}").contains("unknown key \"listne\""), "{e:#}");
        let (_d, path) = write("[serve]\nlisten = \"x\"\n");
        assert!(parse_from::<Cli>(args(&["serve"]), Some(path.into())).is_err());
        let (_d, path) = write("database = \"postgres://u:hunter2@h/db\"\n");
        let (_, loaded) = parse_from::<Cli>(args(&["serve"]), Some(path.into())).unwrap();
        let printed = loaded.print("serve");
        assert!(!printed.contains("hunter2") && printed.contains("postgres://u:***@h/db"), "{printed}");
    }
}
