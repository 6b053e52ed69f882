//! `tasks watch`: follows a task's Terraform log while it is written, by long-polling the
//! `GetTaskLog` extension from the last sequence number seen. Each chunk is printed as it
//! arrives (stdout chunks to stdout, stderr chunks to stderr) under a header line whenever the
//! Terraform command changes; at the end the task's status, duration and outputs are shown, and
//! a Failed task becomes [`Failure::TaskFailed`] with its StatusMessage. When standard output
//! is closed (`tasks watch ID | head`) following stops.

use serde_json::Value;

use super::{write_flush, Client, Failure};
use crate::api::action::Action;

/// Longest server-side wait of one `GetTaskLog` call.
const WAIT_SECONDS: &str = "20";

/// Follows `task_id` to its end.
pub async fn watch(client: &Client, task_id: &str) -> Result<(), Failure> {
    let mut printer = Printer::default();
    let mut after = 0;
    loop {
        let after_text = after.to_string();
        let log =
            client.invoke(Action::GetTaskLog, &[("TaskId", task_id), ("AfterSeq", &after_text), ("WaitSeconds", WAIT_SECONDS)]).await?;
        for chunk in log["Chunks"].as_array().into_iter().flatten() {
            printer.chunk(chunk)?;
        }
        after = log["NextSeq"].as_i64().unwrap_or(after);
        if log["Finished"].as_bool() == Some(true) {
            break;
        }
    }
    printer.end_line()?;
    let task = client.invoke(Action::GetTask, &[("TaskId", task_id)]).await?;
    let detail = &task["TaskDetail"];
    write_flush(&mut std::io::stdout(), &summary(detail))?;
    let status = detail["Status"].as_str().unwrap_or_default();
    if status == "Failed" {
        return Err(Failure::TaskFailed(detail["StatusMessage"].as_str().unwrap_or("no status message").to_string()));
    }
    Ok(())
}

/// Prints chunks, remembering the command being shown and whether a line is open.
#[derive(Default)]
struct Printer {
    command: Option<String>,
    mid_line: bool,
}

impl Printer {
    fn chunk(&mut self, chunk: &Value) -> Result<(), Failure> {
        let command = chunk["Command"].as_str().unwrap_or_default();
        if self.command.as_deref() != Some(command) {
            self.end_line()?;
            // The engine writes its own notes under the command `servicecatalog`.
            let label = if command == "servicecatalog" { command.to_string() } else { format!("terraform {command}") };
            write_flush(&mut std::io::stdout(), &format!("==> {label}\n"))?;
            self.command = Some(command.to_string());
        }
        let content = chunk["Content"].as_str().unwrap_or_default();
        if content.is_empty() {
            return Ok(());
        }
        if chunk["Stream"].as_str() == Some("stderr") {
            // Standard error may be closed too: the log goes on to standard output.
            let _ = write_flush(&mut std::io::stderr(), content);
        } else {
            write_flush(&mut std::io::stdout(), content)?;
        }
        self.mid_line = !content.ends_with('\n');
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), Failure> {
        if std::mem::take(&mut self.mid_line) {
            write_flush(&mut std::io::stdout(), "\n")?;
        }
        Ok(())
    }
}

/// `Task … Succeeded in 4s` and the outputs, one per line.
fn summary(detail: &Value) -> String {
    let text = |key: &str| detail[key].as_str().unwrap_or_default();
    let mut out = format!("==> task {} {}", text("TaskId"), text("Status"));
    if let Some(elapsed) = elapsed(text("CreateTime"), text("UpdateTime")) {
        out.push_str(&format!(" in {elapsed}"));
    }
    out.push('\n');
    for output in detail["Outputs"].as_array().into_iter().flatten() {
        let value = match &output["OutputValue"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!("{} = {value}\n", output["OutputKey"].as_str().unwrap_or_default()));
    }
    out
}

/// The time between two API timestamps (second precision), as `1h02m03s`, `2m05s` or `4s`.
fn elapsed(from: &str, to: &str) -> Option<String> {
    let parse = |t: &str| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%SZ").ok();
    let seconds = (parse(to)? - parse(from)?).num_seconds().max(0);
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    Some(match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m{s:02}s"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_like_clocks() {
        assert_eq!(elapsed("2026-01-01T00:00:00Z", "2026-01-01T00:00:04Z").unwrap(), "4s");
        assert_eq!(elapsed("2026-01-01T00:00:00Z", "2026-01-01T00:02:05Z").unwrap(), "2m05s");
        assert_eq!(elapsed("2026-01-01T00:00:00Z", "2026-01-01T01:02:03Z").unwrap(), "1h02m03s");
        assert_eq!(elapsed("bad", "2026-01-01T00:00:04Z"), None);
    }

    #[test]
    fn the_summary_has_status_time_and_outputs() {
        let detail = json!({
            "TaskId": "task-1", "Status": "Succeeded",
            "CreateTime": "2026-01-01T00:00:00Z", "UpdateTime": "2026-01-01T00:00:07Z",
            "Outputs": [{"OutputKey": "greeting", "OutputValue": "Hello, world!"}],
        });
        assert_eq!(summary(&detail), "==> task task-1 Succeeded in 7s\ngreeting = Hello, world!\n");
    }
}
