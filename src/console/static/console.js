// The console's only script, an enhancement: pages work without it.
// - a running task's log streams in by long-polling the console's GetTaskLog endpoint, following
//   new lines while the reader is at the end;
// - a template file chosen in a form fills the template text area;
// - a constraint's Config placeholder follows the chosen type;
// - forms with data-confirm ask before they are sent.
"use strict";

// Whether an element is scrolled to its end (give or take a line).
function atEnd(element) {
  return element.scrollHeight - element.scrollTop - element.clientHeight < 24;
}

function streamLog(box) {
  const url = box.dataset.log;
  const blocks = new Map();
  let after = 0;
  const block = (command, stream) => {
    const key = command + "\u0000" + stream;
    if (!blocks.has(key)) {
      const details = document.createElement("details");
      details.open = true;
      const summary = document.createElement("summary");
      summary.textContent = "terraform " + command + " · " + stream;
      const pre = document.createElement("pre");
      details.append(summary, pre);
      box.append(details);
      blocks.set(key, pre);
    }
    return blocks.get(key);
  };
  const poll = async () => {
    let answer;
    try {
      const response = await fetch(url + "?after=" + after, { credentials: "same-origin", headers: { Accept: "application/json" } });
      answer = await response.json();
      if (!response.ok) throw new Error(answer.Message || response.statusText);
    } catch (error) {
      const note = box.querySelector(".error") || box.appendChild(document.createElement("p"));
      note.className = "error";
      note.textContent = "Live log interrupted (" + error.message + "); retrying…";
      setTimeout(poll, 3000);
      return;
    }
    box.querySelector(".error")?.remove();
    // Follow new lines while the reader is at the end (of a block, or of the page); someone who
    // scrolled up to read stays where they are.
    const pageAtEnd = atEnd(document.scrollingElement);
    for (const chunk of answer.Chunks) {
      const pre = block(chunk.Command, chunk.Stream);
      const following = !pre.hasChildNodes() || atEnd(pre);
      pre.append(chunk.Content);
      if (following) pre.scrollTop = pre.scrollHeight;
    }
    if (pageAtEnd && answer.Chunks.length > 0) {
      document.scrollingElement.scrollTop = document.scrollingElement.scrollHeight;
    }
    after = answer.NextSeq;
    if (answer.Finished) {
      location.reload();
    } else {
      poll();
    }
  };
  poll();
}

function tickElapsed(element) {
  const start = Date.parse(element.dataset.start);
  if (isNaN(start) || element.dataset.end) return;
  const show = () => {
    const seconds = Math.max(0, Math.round((Date.now() - start) / 1000));
    element.textContent = seconds >= 60 ? Math.floor(seconds / 60) + " min " + (seconds % 60) + " s" : seconds + " s";
  };
  show();
  setInterval(show, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  const log = document.getElementById("task-log");
  if (log) streamLog(log);
  const elapsed = document.getElementById("task-elapsed");
  if (elapsed) tickElapsed(elapsed);
  for (const input of document.querySelectorAll("input[type=file][data-fill]")) {
    input.addEventListener("change", async () => {
      const file = input.files[0];
      if (file) document.getElementById(input.dataset.fill).value = await file.text();
    });
  }
  // A select whose options carry examples shows the chosen one's as the placeholder of the
  // field it names (a constraint's Config follows its type).
  for (const select of document.querySelectorAll("select[data-examples]")) {
    select.addEventListener("change", () => {
      const target = document.getElementById(select.dataset.examples);
      const example = select.selectedOptions[0]?.dataset.example;
      if (target && example) target.placeholder = example;
    });
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
