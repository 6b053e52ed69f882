//! `completion bash|zsh|fish`: shell completion scripts generated from the action table and
//! `api::spec` (each action's `--Param` names, flattened lists as `--Name.1.Field`, the allowed
//! values of enum parameters) and from the clap definition of the other subcommands, so they
//! cannot drift from what the binary accepts. Values that live elsewhere (profile, product and
//! provisioned-product names) are asked of the binary while completing, through the hidden
//! `__complete KIND` command ([`values`]).

use clap::ValueEnum;

use super::args::CLIENT_OPTIONS;
use super::config::{self, Connection};
use super::{provision, Client, Failure};
use crate::api::action::Action;
use crate::api::spec;

/// A shell with a completion script.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    /// `source <(servicecatalog completion bash)`.
    Bash,
    /// `source <(servicecatalog completion zsh)` after `compinit`.
    Zsh,
    /// `servicecatalog completion fish | source`.
    Fish,
}

/// Values the binary lists while completing (`servicecatalog __complete KIND`, one per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dynamic {
    /// Profile names of the configuration file.
    Profiles,
    /// Names of the products the caller can launch.
    Products,
    /// Names of the caller's provisioned products.
    ProvisionedProducts,
}

/// What a word can be: fixed values or values listed by the binary.
enum Values {
    Fixed(Vec<String>),
    Dynamic(Dynamic),
}

/// Where a value goes: after an option, or as the first word after the command.
enum Slot {
    Option(String),
    FirstPositional,
}

/// What to offer: the first word, the words after each command (`configure`,
/// `configure import-root`, `GetPortfolio`, …), and values by command and slot.
struct Words {
    first: Vec<String>,
    after: Vec<(String, Vec<String>)>,
    values: Vec<(String, Slot, Values)>,
}

/// The dynamic values of a clap argument, by its id.
fn dynamic_arg(id: &str) -> Option<Dynamic> {
    match id {
        "profile" => Some(Dynamic::Profiles),
        "product" => Some(Dynamic::Products),
        "provisioned_product" => Some(Dynamic::ProvisionedProducts),
        _ => None,
    }
}

/// The completion script for `shell`; `root` is the whole command line definition.
pub fn script(shell: Shell, root: &clap::Command) -> String {
    let words = words(root);
    match shell {
        Shell::Bash => bash(&words),
        Shell::Zsh => zsh(&words),
        Shell::Fish => fish(&words),
    }
}

/// `__complete KIND`: the values, one per line (the scripts discard its errors).
pub async fn values(kind: Dynamic) -> Result<String, Failure> {
    let names = match kind {
        Dynamic::Profiles => config::profile_names(&config::path()?)?,
        Dynamic::Products | Dynamic::ProvisionedProducts => {
            let (action, field) = match kind {
                Dynamic::Products => (Action::ListProductsAsEndUser, "ProductName"),
                _ => (Action::ListProvisionedProducts, "ProvisionedProductName"),
            };
            let client = Client::new(&Connection::default().resolve()?)?;
            let items = provision::list_all(&client, action).await?;
            items.iter().filter_map(|item| item[field].as_str()).map(String::from).collect()
        }
    };
    Ok(names.join("\n"))
}

fn words(root: &clap::Command) -> Words {
    let mut root = root.clone();
    root.build();
    let options = |command: &clap::Command| -> Vec<String> {
        command.get_arguments().filter(|a| !a.is_hide_set()).filter_map(|a| a.get_long()).map(|l| format!("--{l}")).collect()
    };
    let mut first: Vec<String> = Action::ALL.iter().map(|a| a.name().to_string()).collect();
    let mut after = Vec::new();
    let mut values = vec![
        ("*".to_string(), Slot::Option("--profile".into()), Values::Dynamic(Dynamic::Profiles)),
        ("*".to_string(), Slot::Option("--output".into()), Values::Fixed(vec!["json".into(), "table".into(), "cols=".into()])),
    ];
    for action in Action::ALL {
        let mut candidates = Vec::new();
        for param in &spec::actions()[action.name()].request {
            candidates.push(format!("--{}", param.name));
            if param.encoding.as_deref() == Some("flat") {
                match param.item_fields() {
                    [] => candidates.push(format!("--{}.1", param.name)),
                    fields => candidates.extend(fields.iter().map(|f| format!("--{}.1.{}", param.name, f.name))),
                }
            }
            if let Some(allowed) = &param.limits.allowed {
                values.push((action.name().to_string(), Slot::Option(format!("--{}", param.name)), Values::Fixed(allowed.clone())));
            }
        }
        candidates.extend(CLIENT_OPTIONS.iter().map(|o| o.to_string()));
        after.push((action.name().to_string(), candidates));
    }
    for command in root.get_subcommands().filter(|c| !c.is_hide_set()) {
        first.push(command.get_name().to_string());
        let nested: Vec<&clap::Command> = command.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help").collect();
        let mut candidates: Vec<String> = nested.iter().map(|c| c.get_name().to_string()).collect();
        candidates.extend(options(command));
        after.push((command.get_name().to_string(), candidates));
        positional_values(command.get_name(), command, &mut values);
        // `help`'s own subcommands only repeat the command names: no options to offer below them.
        if command.get_name() != "help" {
            for sub in nested {
                let key = format!("{} {}", command.get_name(), sub.get_name());
                after.push((key.clone(), options(sub)));
                positional_values(&key, sub, &mut values);
            }
        }
    }
    Words { first, after, values }
}

/// The values of a command's first positional argument: its possible values, or names the
/// binary lists.
fn positional_values(key: &str, command: &clap::Command, values: &mut Vec<(String, Slot, Values)>) {
    let Some(arg) = command.get_positionals().next() else { return };
    let possible: Vec<String> = arg.get_possible_values().iter().map(|v| v.get_name().to_string()).collect();
    let found = if possible.is_empty() { dynamic_arg(arg.get_id().as_str()).map(Values::Dynamic) } else { Some(Values::Fixed(possible)) };
    values.extend(found.map(|v| (key.to_string(), Slot::FirstPositional, v)));
}

/// The two-word command keys (`configure import-root`), which the scripts look for first.
fn nested_keys(words: &Words) -> Vec<&str> {
    words.after.iter().map(|(key, _)| key.as_str()).filter(|key| key.contains(' ')).collect()
}

/// The `case` arms of the value rules: (arms matching `key|previous word` for options, arms
/// matching `key|#N` for a first positional at word N). `command_word` is the index of the
/// command's first word (1 in bash, which counts `servicecatalog` as word 0; 2 in zsh); `arm`
/// writes an arm from its pattern and action, `fixed` the action of fixed values.
fn value_arms(
    words: &Words,
    command_word: usize,
    arm: &dyn Fn(&str, &str) -> String,
    fixed: &dyn Fn(&[String]) -> String,
) -> (String, String) {
    let (mut options, mut positionals) = (String::new(), String::new());
    for (key, slot, values) in &words.values {
        let key_pattern = if key == "*" { "*".to_string() } else { format!("\"{key}\"") };
        let action = match values {
            Values::Fixed(values) => fixed(values),
            Values::Dynamic(kind) => format!("dynamic={}", dynamic_name(*kind)),
        };
        match slot {
            Slot::Option(option) => options.push_str(&arm(&format!("{key_pattern}\"|{option}\""), &action)),
            Slot::FirstPositional => {
                let pattern = format!("{key_pattern}\"|#{}\"", command_word + key.split(' ').count());
                positionals.push_str(&arm(&pattern, &action));
            }
        }
    }
    (options, positionals)
}

fn bash(words: &Words) -> String {
    let mut out =
        String::from("# bash completion for servicecatalog (generated by `servicecatalog completion bash`)\n_servicecatalog() {\n");
    out.push_str("    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} key=${COMP_WORDS[1]} words=\"\" dynamic=\"\"\n");
    out.push_str("    if (( COMP_CWORD > 2 )); then\n        case \"${COMP_WORDS[1]} ${COMP_WORDS[2]}\" in\n");
    out.push_str(&format!("            \"{}\") key=\"${{COMP_WORDS[1]}} ${{COMP_WORDS[2]}}\" ;;\n", nested_keys(words).join("\"|\"")));
    out.push_str("        esac\n    fi\n");
    out.push_str("    if (( COMP_CWORD > 1 )); then\n        case \"$key|$prev\" in\n");
    let (options, positionals) = value_arms(words, 1, &|pattern, action| format!("            {pattern}) {action} ;;\n"), &|values| {
        format!("words=\"{}\"", values.join(" "))
    });
    out.push_str(&options);
    out.push_str("        esac\n        [[ -z $words$dynamic && $cur != -* ]] && case \"$key|#$COMP_CWORD\" in\n");
    out.push_str(&positionals);
    out.push_str("        esac\n    fi\n");
    out.push_str("    if [[ -n $dynamic ]]; then\n        local IFS=$'\\n'\n");
    out.push_str("        COMPREPLY=($(compgen -W \"$(servicecatalog __complete \"$dynamic\" 2>/dev/null)\" -- \"$cur\"))\n");
    out.push_str("        COMPREPLY=(\"${COMPREPLY[@]// /\\\\ }\")\n        return\n    fi\n");
    out.push_str(&format!(
        "    if [[ -n $words ]]; then\n        :\n    elif (( COMP_CWORD == 1 )); then\n        words=\"{}\"\n    else\n        case \"$key\" in\n",
        words.first.join(" ")
    ));
    for (key, candidates) in &words.after {
        out.push_str(&format!("            \"{key}\") words=\"{}\" ;;\n", candidates.join(" ")));
    }
    out.push_str(
        "        esac\n    fi\n    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\ncomplete -F _servicecatalog servicecatalog\n",
    );
    out
}

/// The word `__complete` takes for a kind of values.
fn dynamic_name(kind: Dynamic) -> String {
    kind.to_possible_value().expect("no value is skipped").get_name().to_string()
}

fn zsh(words: &Words) -> String {
    let mut out = String::from("#compdef servicecatalog\n# zsh completion for servicecatalog (generated by `servicecatalog completion zsh`)\n_servicecatalog() {\n");
    out.push_str("    local key=${words[2]} dynamic=\"\"\n    local -a candidates\n");
    out.push_str("    if (( CURRENT > 3 )); then\n        case \"${words[2]} ${words[3]}\" in\n");
    out.push_str(&format!("            (\"{}\") key=\"${{words[2]}} ${{words[3]}}\" ;;\n", nested_keys(words).join("\"|\"")));
    out.push_str("        esac\n    fi\n");
    out.push_str("    if (( CURRENT > 2 )); then\n        case \"$key|${words[CURRENT-1]}\" in\n");
    let (options, positionals) = value_arms(words, 2, &|pattern, action| format!("            ({pattern}) {action} ;;\n"), &|values| {
        format!("candidates=({})", values.join(" "))
    });
    out.push_str(&options);
    out.push_str("        esac\n        [[ -z $candidates$dynamic && ${words[CURRENT]} != -* ]] && case \"$key|#$CURRENT\" in\n");
    out.push_str(&positionals);
    out.push_str("        esac\n    fi\n");
    out.push_str("    if [[ -n $dynamic ]]; then\n        candidates=(\"${(@f)$(servicecatalog __complete $dynamic 2>/dev/null)}\")\n");
    out.push_str(&format!(
        "    elif (( ${{#candidates}} )); then\n        :\n    elif (( CURRENT == 2 )); then\n        candidates=({})\n    else\n        case \"$key\" in\n",
        words.first.join(" ")
    ));
    for (key, candidates) in &words.after {
        out.push_str(&format!("            (\"{key}\") candidates=({}) ;;\n", candidates.join(" ")));
    }
    out.push_str("        esac\n    fi\n    compadd -- $candidates\n}\ncompdef _servicecatalog servicecatalog\n");
    out
}

/// The fish condition of a command key.
fn fish_condition(key: &str) -> String {
    match key.split_once(' ') {
        Some((command, sub)) => format!("__fish_seen_subcommand_from {command}; and __fish_seen_subcommand_from {sub}"),
        None => format!("__fish_seen_subcommand_from {key}"),
    }
}

fn fish(words: &Words) -> String {
    let mut out = String::from(
        "# fish completion for servicecatalog (generated by `servicecatalog completion fish`)\ncomplete -c servicecatalog -f\n",
    );
    out.push_str(&format!("complete -c servicecatalog -n __fish_use_subcommand -a '{}'\n", words.first.join(" ")));
    for (key, candidates) in &words.after {
        let condition = fish_condition(key);
        let (options, words): (Vec<&String>, Vec<&String>) = candidates.iter().partition(|c| c.starts_with("--"));
        if !words.is_empty() {
            out.push_str(&format!(
                "complete -c servicecatalog -n '{condition}' -a '{}'\n",
                words.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(" ")
            ));
        }
        for option in options {
            out.push_str(&format!("complete -c servicecatalog -n '{condition}' -l {}\n", &option[2..]));
        }
    }
    for (key, slot, values) in &words.values {
        let condition = if key == "*" { "not __fish_use_subcommand".to_string() } else { fish_condition(key) };
        let option = match slot {
            Slot::Option(option) => format!(" -l {}", &option[2..]),
            Slot::FirstPositional => String::new(),
        };
        let values = match values {
            Values::Fixed(fixed) => fixed.join(" "),
            Values::Dynamic(kind) => format!("(servicecatalog __complete {} 2>/dev/null)", dynamic_name(*kind)),
        };
        out.push_str(&format!("complete -c servicecatalog -n '{condition}'{option} -x -a '{values}'\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> clap::Command {
        use clap::Subcommand;
        super::super::Command::augment_subcommands(clap::Command::new("servicecatalog"))
    }

    #[test]
    fn every_script_offers_every_action_and_its_parameters() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = script(shell, &root());
            for action in Action::ALL {
                assert!(text.contains(action.name()), "{shell:?} lacks {}", action.name());
            }
            let option = |name: &str| match shell {
                Shell::Fish => format!("-l {name}\n"),
                _ => format!("--{name} "),
            };
            for name in ["PortfolioId", "Parameters.1.ParameterKey", "TaskId", "all", "query", "ca-bundle", "data-dir", "wait"] {
                assert!(text.contains(&option(name)), "{shell:?} lacks {name}");
            }
            for word in
                ["configure", "import-root", "switch", "launch", "update", "terminate", "Desc", "__complete", "provisioned-products"]
            {
                assert!(text.contains(word), "{shell:?} lacks {word}");
            }
            assert!(!text.contains("users help"), "{shell:?} offers clap's help subcommands");
        }
    }

    #[test]
    fn the_bash_script_is_valid_bash() {
        let Ok(bash) = std::process::Command::new("bash").arg("-n").stdin(std::process::Stdio::piped()).spawn() else {
            eprintln!("no bash: not checking the script's syntax");
            return;
        };
        use std::io::Write;
        let mut bash = bash;
        bash.stdin.take().unwrap().write_all(script(Shell::Bash, &root()).as_bytes()).unwrap();
        assert!(bash.wait().unwrap().success());
    }
}
