// The web console in a real browser: Playwright (playwright-core) driving the system's
// Chromium headless against a running `servicecatalog serve --sample-catalog`.
// scripts/browser-test starts the server and sets:
//   SC_URL        base URL of the server
//   SC_DATA_DIR   its data directory (root-credentials.json)
//   SC_REPOS      a directory for Git repositories the server may fetch templates from
//   SC_BIN        the servicecatalog binary (to create an end user)
//   SC_ARTIFACTS  where screenshots go
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.SC_URL;
const DATA_DIR = process.env.SC_DATA_DIR;
const REPOS = process.env.SC_REPOS;
const BIN = process.env.SC_BIN;
const ARTIFACTS = process.env.SC_ARTIFACTS ?? "target/browser-artifacts";
const CHROMIUM = process.env.SC_CHROMIUM ?? "/usr/bin/chromium";
const RUN = Date.now().toString(36);
const PRODUCT = `Greeter ${RUN}`;
const USER = `browser-${RUN}`;
const TEMPLATE_WITH_ERROR = 'variable "name" {\n  type = string\n  default = "world"\n\noutput "greeting" {\n  value = "Hello"\n}\n';
const TEMPLATE = `# A product without resources, for the console's browser tests.
variable "name" {
  type        = string
  description = "Whom to greet."
}

variable "punctuation" {
  type        = string
  default     = "!"
  description = "How to end the greeting."
}

variable "token" {
  type        = string
  default     = "s3cr3t-default"
  sensitive   = true
  description = "A secret the greeting never shows."
}

output "greeting" {
  description = "The greeting."
  value       = "Hello, \${var.name}\${var.punctuation}"
}
`;

const SANDBOX = `terraform {
  required_providers {
    sandbox = {
      source  = "servicecatalog.local/demo/sandbox"
      version = "0.1.0"
    }
  }
}

provider "sandbox" {}
`;
const CHATTY = `Chatty ${RUN}`;
// Enough output to overflow the log's box (sixty files), then ten slow steps that keep adding lines.
const CHATTY_TEMPLATE = `${SANDBOX}
resource "sandbox_file" "page" {
  count   = 60
  path    = "chatty/page-\${count.index}.txt"
  content = "page \${count.index}"
}
${Array.from({ length: 10 }, (_, i) => `
resource "sandbox_sleep" "s${i + 1}" {
  duration_ms = 2000
  depends_on  = [${i === 0 ? "sandbox_file.page" : `sandbox_sleep.s${i}`}]
}
`).join("")}`;

const profiles = [];
const browsers = [];
/** Content-Security-Policy violations reported by any page (none expected). */
const cspViolations = [];

/** A fresh headless Chromium with its own profile, as one person's browser. */
async function openBrowser(viewport = { width: 1280, height: 900 }) {
  const profile = mkdtempSync(path.join(tmpdir(), "sc-browser-"));
  profiles.push(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  browsers.push(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  page.on("dialog", (dialog) => dialog.accept());
  page.on("console", (message) => {
    if (/Content.Security.Policy/i.test(message.text())) cspViolations.push(`${page.url()}: ${message.text()}`);
  });
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function signIn(page, id, secret) {
  await page.goto(`${BASE}/`);
  assert.match(page.url(), /\/console\/sign-in$/, "a browser opening / lands on the console's sign-in page");
  await page.getByLabel("AccessKey ID").fill(id);
  await page.getByLabel("AccessKey secret").fill(secret);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/console\/catalog/);
}

let admin;
let user;
let userKey;
let provisionedUrl;
let portfolioUrl;

/** The administrator publishes a product from a pasted template and adds it to the browser tests' portfolio. */
async function publish(name, template) {
  await admin.goto(`${BASE}/console/admin/products`);
  await admin.getByLabel("Name (required)", { exact: true }).fill(name);
  await admin.getByLabel("Provider (required)", { exact: true }).fill("browser tests");
  await admin.getByLabel("Terraform template").fill(template);
  await admin.getByRole("button", { name: "Publish product" }).click();
  await admin.waitForURL(/\/console\/admin\/products\/prod-/);
  const productUrl = admin.url();
  await admin.goto(portfolioUrl);
  await admin.getByLabel("Add a product").selectOption({ label: name });
  await admin.getByRole("button", { name: "Add", exact: true }).click();
  await admin.getByRole("link", { name }).waitFor();
  return productUrl;
}

/** Runs git in `repo` as a fixed author, without the user's configuration. */
function git(repo, ...args) {
  const env = { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@example.com", GIT_COMMITTER_NAME: "t",
    GIT_COMMITTER_EMAIL: "t@example.com", GIT_CONFIG_GLOBAL: "/dev/null" };
  return execFileSync("git", ["-C", repo, ...args], { env, encoding: "utf8" });
}

before(() => {
  for (const name of ["SC_URL", "SC_DATA_DIR", "SC_REPOS", "SC_BIN"]) assert.ok(process.env[name], `${name} must be set (scripts/browser-test sets it)`);
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  for (const b of browsers) await b.close();
  for (const p of profiles) rmSync(p, { recursive: true, force: true });
});

test("a wrong secret is refused and never shown", async () => {
  const page = await openBrowser();
  await page.goto(`${BASE}/console/sign-in`);
  await shot(page, "01-sign-in");
  const root = JSON.parse(readFileSync(path.join(DATA_DIR, "root-credentials.json"), "utf8"));
  await page.getByLabel("AccessKey ID").fill(root.AccessKeyId);
  await page.getByLabel("AccessKey secret").fill("not-the-secret");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").getByText("not valid").waitFor();
  assert.ok(!(await page.content()).includes("not-the-secret"));
});

test("the administrator signs in and publishes a product from a pasted template", async () => {
  const root = JSON.parse(readFileSync(path.join(DATA_DIR, "root-credentials.json"), "utf8"));
  admin = await openBrowser();
  await signIn(admin, root.AccessKeyId, root.AccessKeySecret);
  assert.ok(!(await admin.content()).includes(root.AccessKeySecret), "the secret is not in the page");
  await shot(admin, "02-admin-catalog");

  await admin.getByRole("link", { name: "Portfolios" }).click();
  await admin.getByLabel("Name (required)", { exact: true }).fill(`Browser portfolio ${RUN}`);
  await admin.getByLabel("Provider (required)", { exact: true }).fill("browser tests");
  await admin.getByRole("button", { name: "Create portfolio" }).click();
  await admin.waitForURL(/\/console\/admin\/portfolios\/port-/);
  portfolioUrl = admin.url();

  await admin.getByRole("link", { name: "Products", exact: true }).click();
  await admin.getByLabel("Name (required)", { exact: true }).fill(PRODUCT);
  await admin.getByLabel("Provider (required)", { exact: true }).fill("browser tests");
  await admin.getByLabel("Terraform template").fill(TEMPLATE_WITH_ERROR);
  await admin.getByRole("button", { name: "Publish product" }).click();
  const bad = admin.locator("ol.source li.bad");
  await bad.waitFor();
  assert.match(await bad.getAttribute("id"), /^line-\d+$/, "the error's line is marked");
  assert.match(await admin.getByRole("alert").innerText(), /line \d+/);
  await shot(admin, "03-admin-template-error");

  await admin.getByLabel("Terraform template").fill(TEMPLATE);
  await admin.getByRole("button", { name: "Publish product" }).click();
  await admin.waitForURL(/\/console\/admin\/products\/prod-/);
  await admin.getByRole("heading", { name: PRODUCT }).waitFor();
  await shot(admin, "04-admin-product");

  await admin.goto(portfolioUrl);
  await admin.getByLabel("Add a product").selectOption({ label: PRODUCT });
  await admin.getByRole("button", { name: "Add", exact: true }).click();
  await admin.getByRole("link", { name: PRODUCT }).waitFor();
  await admin.getByLabel("Name pattern").fill("browser-*");
  await admin.getByRole("button", { name: "Grant" }).click();
  await admin.getByRole("cell", { name: "browser-*", exact: true }).waitFor();
  await shot(admin, "05-admin-portfolio");
});

test("the administrator opens a product of a portfolio not granted to them, and manages its constraints", async () => {
  // The portfolio holds the product and is granted by pattern to end users only.
  await admin.goto(`${BASE}/console/admin/products`);
  await admin.getByRole("link", { name: PRODUCT }).click();
  await admin.getByRole("heading", { name: PRODUCT }).waitFor();
  await admin.getByRole("link", { name: `Browser portfolio ${RUN}` }).click();
  const portfolioUrl = admin.url();

  // A grant to a principal that does not exist: the same page, the error beside the form, the input kept.
  await admin.getByLabel("Principal id").fill("no-such-principal");
  await admin.getByRole("button", { name: "Grant" }).click();
  await admin.locator("#grant .field-error").getByText("no-such-principal").waitFor();
  assert.equal(await admin.getByLabel("Principal id").inputValue(), "no-such-principal");
  await admin.getByRole("navigation", { name: "Main" }).waitFor();
  await shot(admin, "05a-grant-error");

  // The Config placeholder follows the type; a wrong Config is shown beside it, the input kept.
  await admin.getByLabel("Type", { exact: true }).selectOption("StackRegion");
  assert.match(await admin.getByLabel("Config (JSON)").getAttribute("placeholder"), /StackRegions/);
  await admin.getByLabel("Type", { exact: true }).selectOption("Template");
  assert.match(await admin.getByLabel("Config (JSON)").getAttribute("placeholder"), /AllowedValues/);
  await admin.getByLabel("Type", { exact: true }).selectOption("StackRegion");
  await admin.getByLabel("Config (JSON)").fill('{"StackRegions": ["mars-north-1"]}');
  await admin.getByRole("button", { name: "Create constraint" }).click();
  await admin.locator("#constraint .field-error").getByText("mars-north-1").waitFor();
  assert.equal(await admin.getByLabel("Config (JSON)").inputValue(), '{"StackRegions": ["mars-north-1"]}');
  assert.equal(await admin.getByLabel("Type", { exact: true }).inputValue(), "StackRegion");
  await shot(admin, "05b-constraint-error");

  await admin.getByLabel("Config (JSON)").fill('{"StackRegions": ["cn-hangzhou"]}');
  await admin.getByRole("button", { name: "Create constraint" }).click();
  await admin.waitForURL(portfolioUrl);
  const row = admin.locator("table.constraints tr", { hasText: "StackRegion" });
  await row.locator("dl.config dd").getByText("cn-hangzhou", { exact: true }).waitFor();

  // Edit: a Config of the wrong shape is refused on the constraint's page, then a good one saved.
  await row.getByRole("link", { name: "Edit" }).click();
  await admin.getByRole("heading", { name: "StackRegion constraint" }).waitFor();
  await admin.getByLabel("Config (JSON)").fill('{"Regions": ["cn-hangzhou"]}');
  await admin.getByRole("button", { name: "Save" }).click();
  await admin.locator(".field-error").getByText(/Regions/).waitFor();
  assert.equal(await admin.getByLabel("Config (JSON)").inputValue(), '{"Regions": ["cn-hangzhou"]}');
  await shot(admin, "05c-constraint-edit-error");
  await admin.getByLabel("Config (JSON)").fill('{"StackRegions": ["cn-hangzhou", "cn-shanghai"]}');
  await admin.getByRole("button", { name: "Save" }).click();
  await admin.waitForURL(portfolioUrl);
  await row.locator("dl.config dd").getByText("cn-hangzhou, cn-shanghai").waitFor();
  await shot(admin, "05d-portfolio-constraints");

  // The product's page lists it too, by portfolio (the administrator is not granted the portfolio).
  await admin.getByRole("link", { name: PRODUCT }).first().click();
  const response = await admin.reload();
  assert.equal(response.status(), 200);
  const listed = admin.locator("table.constraints tr", { hasText: "StackRegion" });
  await listed.getByRole("link", { name: `Browser portfolio ${RUN}` }).waitFor();
  await shot(admin, "05e-product-constraints");
  await listed.getByRole("button", { name: "Delete StackRegion" }).click();
  await admin.waitForURL(portfolioUrl);
  await admin.getByText("No constraints.").waitFor();
});

test("an end user launches the product through the form and watches the log", async () => {
  userKey = JSON.parse(execFileSync(BIN, ["users", "create", USER, "--json", "--data-dir", DATA_DIR], { encoding: "utf8" }));
  user = await openBrowser();
  await signIn(user, userKey.AccessKeyId, userKey.AccessKeySecret);
  await user.getByRole("link", { name: PRODUCT }).click();
  await user.getByRole("link", { name: /^Launch / }).click();
  await shot(user, "06-launch-form");
  assert.equal(await user.getByLabel(/^token/).getAttribute("type"), "password", "sensitive parameters are password inputs");
  assert.equal(await user.getByLabel(/^punctuation/).inputValue(), "!", "defaults are filled in");

  // The server validates like the API: a required parameter left out is shown at its field.
  await user.getByLabel("Name of the provisioned product").fill(`hello-${RUN}`);
  await user.getByLabel(/^name/).evaluate((input) => input.removeAttribute("required"));
  await user.getByRole("button", { name: "Launch", exact: true }).click();
  await user.locator(".field-error").getByText('"name" is required').waitFor();
  assert.equal(await user.getByLabel(/^name/).getAttribute("aria-invalid"), "true");
  await shot(user, "07-launch-error");

  await user.getByLabel(/^name/).fill("browser");
  await user.getByLabel(/^token/).fill("hunter2-sensitive");
  await user.getByRole("button", { name: "Launch", exact: true }).click();
  await user.waitForURL(/\/console\/tasks\/task-/);
  const logBox = await user.locator(".log").boundingBox();
  assert.ok(logBox && logBox.y < 600, `the log starts on the first screen (at ${logBox?.y}px)`);
  const log = user.locator(".log");
  await log.getByText("Apply complete!").first().waitFor({ timeout: 120_000 });
  await shot(user, "08-task-log");
  // The script reloads the finished task: outputs are rendered by the server.
  await user.locator("dl.outputs").getByText("Hello, browser!").waitFor({ timeout: 60_000 });
  assert.ok(!(await user.content()).includes("hunter2-sensitive"), "sensitive values are never shown");
  await shot(user, "09-task-finished");

  await user.getByRole("link", { name: `hello-${RUN}` }).click();
  provisionedUrl = user.url();
  await user.locator(".status-available").first().waitFor();
  await user.locator("dl.outputs").getByText("Hello, browser!").waitFor();
  await shot(user, "10-provisioned-product");
});

test("a running task's log follows its output until the reader scrolls up, and again once back at the end", async () => {
  await publish(CHATTY, CHATTY_TEMPLATE);
  await user.goto(`${BASE}/console/catalog`);
  await user.getByRole("link", { name: CHATTY }).click();
  await user.getByRole("link", { name: /^Launch / }).click();
  await user.getByLabel("Name of the provisioned product").fill(`chatty-${RUN}`);
  await user.getByRole("button", { name: "Launch", exact: true }).click();
  await user.waitForURL(/\/console\/tasks\/task-/);
  const apply = user.locator("#task-log pre", { hasText: "sandbox_sleep.s1: Creating..." });
  await apply.waitFor({ timeout: 120_000 });
  const position = () => apply.evaluate((pre) => ({ top: pre.scrollTop, height: pre.scrollHeight, client: pre.clientHeight }));
  const atEnd = (p) => p.height - p.top - p.client < 24;
  let p = await position();
  assert.ok(p.height > 2 * p.client, `the output overflows its box (${JSON.stringify(p)})`);
  assert.ok(atEnd(p), `the log shows its last line (${JSON.stringify(p)})`);
  await apply.getByText("sandbox_sleep.s3: Creation complete").waitFor({ timeout: 60_000 });
  p = await position();
  assert.ok(atEnd(p), `the log follows new lines (${JSON.stringify(p)})`);
  await shot(user, "08a-log-following");

  // The reader scrolls up to read: new lines arrive without moving what they read.
  await apply.evaluate((pre) => { pre.scrollTop = 0; });
  const before = p.height;
  await apply.getByText("sandbox_sleep.s5: Creation complete").waitFor({ timeout: 60_000 });
  p = await position();
  assert.ok(p.height > before, "new output arrived");
  assert.equal(p.top, 0, "the log stays where the reader scrolled to");
  await shot(user, "08b-log-scrolled-up");

  // Back at the end, it follows again.
  await apply.evaluate((pre) => { pre.scrollTop = pre.scrollHeight; });
  await apply.getByText("sandbox_sleep.s7: Creation complete").waitFor({ timeout: 60_000 });
  p = await position();
  assert.ok(atEnd(p), `the log follows again (${JSON.stringify(p)})`);
  await user.locator("#task-status .status-succeeded").waitFor({ timeout: 120_000 });
});

test("the launch form shows a malformed tag line and a name in use beside their fields, keeping the input", async () => {
  await user.goto(`${BASE}/console/catalog`);
  await user.getByRole("link", { name: PRODUCT }).click();
  await user.getByRole("link", { name: /^Launch / }).click();
  await user.getByLabel("Name of the provisioned product").fill(`HELLO-${RUN}`);
  await user.getByLabel(/^name/).fill("again");
  await user.getByLabel(/^Tags/).fill("env=dev\nnot a tag");
  await user.getByRole("button", { name: "Launch", exact: true }).click();
  await user.locator(".field-error").getByText("Line 2 of the tags").waitFor();
  assert.equal(await user.getByLabel(/^Tags/).inputValue(), "env=dev\nnot a tag", "the input is kept");
  assert.equal(await user.getByLabel(/^name/).inputValue(), "again");
  await shot(user, "10a-launch-tag-error");

  await user.getByLabel(/^Tags/).fill("env=dev");
  await user.getByRole("button", { name: "Launch", exact: true }).click();
  await user.locator(".field-error").getByText("already have a provisioned product").waitFor();
  assert.equal(await user.getByLabel("Name of the provisioned product").getAttribute("aria-invalid"), "true");
  assert.equal(await user.getByLabel("Name of the provisioned product").inputValue(), `HELLO-${RUN}`);
  await shot(user, "10b-launch-name-taken");
});

test("details: a favicon, English region names, plain words in messages, destructive buttons apart", async () => {
  await user.goto(provisionedUrl);
  const icon = await user.locator("link[rel=icon]").getAttribute("href");
  const answer = await user.context().request.get(new URL(icon, BASE).href);
  assert.equal(answer.status(), 200);
  assert.match(answer.headers()["content-type"], /^image\/svg\+xml/);
  assert.match(await answer.text(), /^<svg /);
  // Terminate is a danger button, unlike the ordinary ones.
  const terminate = user.getByRole("button", { name: "Terminate" });
  assert.match(await terminate.getAttribute("class"), /\bdanger\b/);
  const colour = (locator) => locator.evaluate((element) => getComputedStyle(element).backgroundColor);
  assert.notEqual(await colour(terminate), await colour(user.getByRole("link", { name: "Update", exact: true })));
  assert.match(await user.locator("dl.facts").innerText(), /China \(Hangzhou\) \(cn-hangzhou\)/);

  await user.goto(`${BASE}/console/catalog`);
  await user.getByRole("link", { name: PRODUCT }).click();
  await user.getByRole("link", { name: /^Launch / }).click();
  const regions = await user.locator("#region option").allInnerTexts();
  assert.ok(regions.includes("China (Hangzhou) (cn-hangzhou)"), regions.join(", "));
  assert.ok(regions.every((r) => !/[\u3000-\u9fff\uff00-\uffef]/.test(r)), `no CJK text: ${regions.join(", ")}`);

  const missing = await user.goto(`${BASE}/console/provisioned/pp-nosuchproduct1`);
  assert.equal(missing.status(), 404);
  await user.getByRole("alert").getByText('The specified provisioned product "pp-nosuchproduct1" does not exist.').waitFor();
  await shot(user, "10c-not-found-words");
});

test("an end user cannot open an administrator's page; error pages keep the navigation", async () => {
  const response = await user.goto(`${BASE}/console/admin/portfolios`);
  assert.equal(response.status(), 403);
  await user.getByRole("heading", { name: "Forbidden" }).waitFor();
  const nav = user.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "My products" }).waitFor();
  assert.equal(await nav.getByRole("link", { name: "Audit" }).count(), 0, "the end user's navigation, not an administrator's");
  await shot(user, "11-forbidden");

  const missing = await user.goto(`${BASE}/console/no/such/page`);
  assert.equal(missing.status(), 404);
  await user.getByRole("heading", { name: "Not found" }).waitFor();
  await user.getByRole("button", { name: "Sign out" }).waitFor();
  await shot(user, "11a-not-found");
  await nav.getByRole("link", { name: "Tasks" }).click();
  await user.getByRole("heading", { name: "Task history" }).waitFor();

  // Without a session, the error page offers to sign in.
  const stranger = await openBrowser();
  const unknown = await stranger.goto(`${BASE}/console/no-such-page`);
  assert.equal(unknown.status(), 404);
  await stranger.getByRole("link", { name: "Sign in" }).click();
  await stranger.waitForURL(/\/console\/sign-in$/);
  const phone = await openBrowser({ width: 390, height: 844 });
  await signIn(phone, userKey.AccessKeyId, userKey.AccessKeySecret);
  await shot(phone, "12-phone-catalog");
});

test("a change without the session's CSRF token is refused", async () => {
  await user.goto(provisionedUrl);
  const post = (body) =>
    user.evaluate(async ([url, body]) => (await fetch(url, { method: "POST", body: new URLSearchParams(body) })).status, [`${provisionedUrl}/terminate`, body]);
  assert.equal(await post({}), 403, "no token");
  assert.equal(await post({ csrf: "0".repeat(64) }), 403, "a wrong token");
  await user.reload();
  await user.locator(".status-available").first().waitFor();
});

test("the end user checks the product for drift and reads the result on its page", async () => {
  await user.goto(provisionedUrl);
  await user.locator("dd.drift-status").getByText("NeverChecked").waitFor();
  await user.getByRole("button", { name: "Check drift" }).click();
  await user.waitForURL(/\/console\/tasks\/task-/);
  await user.locator("#task-status .status-succeeded").waitFor({ timeout: 120_000 });
  await user.getByText("DetectProvisionedProductDrift").first().waitFor();
  await user.goto(provisionedUrl);
  await user.locator("dd.drift-status .status-insync").waitFor();
  await user.locator("table.drift tbody tr").first().locator(".status-insync").waitFor();
  await shot(user, "12a-drift-checked");
});

/** A local endpoint recording the webhook posts it receives (answering 204). */
const received = [];
let receiver;
let webhookSecret;

test("the administrator registers a webhook: errors beside the form, the secret shown once", async () => {
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => { body += chunk; });
    req.on("end", () => { received.push({ headers: req.headers, body }); res.writeHead(204).end(); });
  });
  await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${receiver.address().port}/hooks`;

  await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Webhooks" }).click();
  await admin.getByRole("heading", { name: "Webhooks" }).waitFor();
  // An address the operator does not allow is refused beside the form, the input kept.
  await admin.getByLabel("URL (required)").fill("http://10.1.2.3/hooks");
  await admin.getByLabel("Description").fill(`ops-${RUN}`);
  await admin.getByLabel("TaskSucceeded").check();
  await admin.getByRole("button", { name: "Register webhook" }).click();
  await admin.getByRole("alert").getByText("--webhook-targets").waitFor();
  assert.equal(await admin.getByLabel("Description").inputValue(), `ops-${RUN}`);
  assert.ok(await admin.getByLabel("TaskSucceeded").isChecked());

  await admin.getByLabel("URL (required)").fill(url);
  await admin.getByRole("button", { name: "Register webhook" }).click();
  webhookSecret = (await admin.locator("#new-secret code").innerText()).trim();
  assert.match(webhookSecret, /^[0-9a-f]{64}$/);
  const row = admin.locator("tbody tr", { hasText: `ops-${RUN}` });
  await row.getByText("TaskSucceeded").waitFor();
  await shot(admin, "16-webhook-registered");
  // Shown once: the list never shows it again.
  await admin.goto(`${BASE}/console/admin/webhooks`);
  assert.ok(!(await admin.content()).includes(webhookSecret));
  const refused = await user.goto(`${BASE}/console/admin/webhooks`);
  assert.equal(refused.status(), 403);
  await user.goto(`${BASE}/console/catalog`);
});

test("the end user terminates the product", async () => {
  await user.goto(provisionedUrl);
  await user.getByRole("button", { name: "Terminate" }).click();
  await user.waitForURL(/\/console\/tasks\/task-/);
  await user.locator("#task-status .status-succeeded").waitFor({ timeout: 120_000 });
  await user.getByText("TerminateProvisionedProduct").waitFor();
  await shot(user, "13-terminated");
  // The product is gone: the task names it without a link to a page that no longer exists.
  const named = user.locator("dl.facts dd", { hasText: `hello-${RUN}` });
  await named.getByText("(terminated)").waitFor();
  assert.equal(await named.locator("a").count(), 0);

  // The task history keeps its tasks, reachable from the navigation.
  await user.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Tasks" }).click();
  await user.getByRole("heading", { name: "Task history" }).waitFor();
  const rows = user.locator("tbody tr", { hasText: `hello-${RUN}` });
  assert.equal(await rows.count(), 3, "the launch, the drift check and the terminate task");
  await rows.filter({ hasText: "TerminateProvisionedProduct" }).getByText("(terminated)").waitFor();
  await shot(user, "13a-task-history");
  await rows.filter({ hasText: "LaunchProduct" }).getByRole("link", { name: /^task-/ }).click();
  await user.locator("dl.outputs").getByText("Hello, browser!").waitFor();
});

test("the webhook got the terminate task's end, signed, and its delivery is listed with the attempt", async () => {
  const deadline = Date.now() + 30_000;
  while (!received.some((r) => JSON.parse(r.body).TaskType === "TerminateProvisionedProduct") && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const post = received.find((r) => JSON.parse(r.body).TaskType === "TerminateProvisionedProduct");
  assert.ok(post, `no terminate event among ${received.length} posts`);
  assert.equal(post.headers["x-servicecatalog-event"], "TaskSucceeded");
  const signed = createHmac("sha256", webhookSecret).update(`${post.headers["x-servicecatalog-timestamp"]}.${post.body}`).digest("hex");
  assert.equal(post.headers["x-servicecatalog-signature"], `sha256=${signed}`);
  assert.ok(received.every((r) => JSON.parse(r.body).EventType === "TaskSucceeded"), "only the chosen event type");

  await admin.goto(`${BASE}/console/admin/webhooks`);
  await admin.getByLabel("Status").selectOption("Delivered");
  await admin.getByRole("button", { name: "Filter" }).click();
  const delivered = admin.locator("table.deliveries tbody tr", { hasText: JSON.parse(post.body).EventId });
  await delivered.getByText("HTTP 204").waitFor();
  await shot(admin, "17-webhook-deliveries");
  await admin.locator("tbody tr", { hasText: `ops-${RUN}` }).getByRole("button", { name: /^Delete wh-/ }).click();
  await admin.getByText("No webhook is registered.").waitFor();
  receiver.close();
});

test("a launch plan names the product it will create without linking to it", async () => {
  await user.goto(`${BASE}/console/catalog`);
  await user.getByRole("link", { name: PRODUCT }).click();
  await user.getByRole("link", { name: /^Launch / }).click();
  await user.getByLabel("Name of the provisioned product").fill(`planned-${RUN}`);
  await user.getByLabel(/^name/).fill("plan");
  await user.getByRole("button", { name: "Preview as a plan" }).click();
  await user.waitForURL(/\/console\/plans\/plan-/);
  const named = user.locator("dl.facts dd", { hasText: `planned-${RUN}` });
  await named.getByText("(launched when the plan is executed)").waitFor();
  assert.equal(await named.locator("a").count(), 0);
  await shot(user, "13b-launch-plan");
  // Executed, the plan's product exists and is linked.
  await user.getByRole("button", { name: "Execute" }).click({ timeout: 60_000 });
  await user.waitForURL(/\/console\/tasks\/task-/);
  await user.locator("#task-status .status-succeeded").waitFor({ timeout: 120_000 });
  await user.locator("dl.facts").getByRole("link", { name: `planned-${RUN}` }).waitFor();
});

test("the administrator adds a version from a Git repository's tag, a URL outside the allowed sources refused at its field", async () => {
  const repo = path.join(REPOS, `greeter-${RUN}`);
  mkdirSync(path.join(repo, "infra"), { recursive: true });
  git(repo, "init", "-q", "-b", "main");
  writeFileSync(path.join(repo, "infra", "main.tf"), TEMPLATE.replace("Hello,", "Hello from Git,"));
  git(repo, "add", "-A");
  git(repo, "commit", "-q", "-m", "release 2");
  git(repo, "tag", "v2");

  await admin.goto(`${BASE}/console/admin/products`);
  await admin.getByRole("link", { name: PRODUCT }).click();
  const productUrl = admin.url();
  await admin.getByLabel("Version name (required)").fill("v2");
  const outside = "https://example.com/templates/main.tf";
  await admin.getByLabel("Or the template's URL").fill(outside);
  await admin.getByRole("button", { name: "Add version" }).click();
  await admin.locator(".field-error").getByText("example.com").waitFor();
  assert.equal(await admin.getByLabel("Or the template's URL").inputValue(), outside, "the input is kept");
  assert.equal(await admin.getByLabel("Or the template's URL").getAttribute("aria-invalid"), "true");
  await admin.getByRole("navigation", { name: "Main" }).waitFor();
  await shot(admin, "05f-version-url-refused");

  await admin.getByLabel("Or the template's URL").fill(`git::file://${repo}//infra?ref=v2`);
  await admin.getByRole("button", { name: "Add version" }).click();
  await admin.waitForURL(productUrl);
  await admin.getByRole("cell", { name: "v2", exact: true }).waitFor();
  await shot(admin, "05g-version-from-git");
});

test("the administrator reads the audit trail, filtered", async () => {
  // Changes made through the API (the command line signs like the SDK) are recorded.
  const root = JSON.parse(readFileSync(path.join(DATA_DIR, "root-credentials.json"), "utf8"));
  const env = { ...process.env, SERVICECATALOG_ENDPOINT: BASE, SERVICECATALOG_ACCESS_KEY_ID: root.AccessKeyId,
    SERVICECATALOG_ACCESS_KEY_SECRET: root.AccessKeySecret, SERVICECATALOG_CONFIG: path.join(tmpdir(), `sc-cli-${RUN}.json`) };
  execFileSync(BIN, ["CreateTagOption", "--Key", `audit-${RUN}`, "--Value", "one"], { env, encoding: "utf8" });
  assert.throws(() => execFileSync(BIN, ["DeleteTagOption", "--TagOptionId", `tag-nosuch${RUN}`], { env, stdio: "pipe" }));

  await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" }).click();
  await admin.getByRole("heading", { name: "Audit trail" }).waitFor();
  await admin.getByLabel("Action").fill("CreateTagOption");
  await admin.getByRole("button", { name: "Filter" }).click();
  const created = admin.locator("tbody tr", { hasText: "CreateTagOption" });
  await created.first().waitFor();
  await created.first().getByText("Success").waitFor();
  await created.first().getByText("Show").click();
  assert.match(await created.first().locator("pre").innerText(), new RegExp(`audit-${RUN}`));

  await admin.getByLabel("Action").fill("DeleteTagOption");
  await admin.getByLabel("Outcome").selectOption("failure");
  await admin.getByRole("button", { name: "Filter" }).click();
  await admin.locator("tbody tr", { hasText: "DeleteTagOption" }).getByText(/^404 /).waitFor();
  await shot(admin, "15-audit");
  await admin.getByLabel("Outcome").selectOption("success");
  await admin.getByRole("button", { name: "Filter" }).click();
  await admin.getByText("No recorded change matches.").waitFor();

  // A launch the console refused for a malformed tag line is recorded like the API's refusals.
  await admin.getByLabel("Action").fill("LaunchProduct");
  await admin.getByLabel("Outcome").selectOption("failure");
  await admin.getByRole("button", { name: "Filter" }).click();
  const refusedLaunch = admin.locator("tbody tr", { hasText: "400 InvalidParameter.Tags" });
  await refusedLaunch.first().getByText("Show").click();
  assert.match(await refusedLaunch.first().locator("pre").innerText(), new RegExp(`HELLO-${RUN}`));
  await shot(admin, "15a-audit-refused-tags");

  // A time that does not parse is shown beside the filters, which are kept.
  const bad = await admin.goto(`${BASE}/console/admin/audit?action=CreateTagOption&end=yesterday`);
  assert.equal(bad.status(), 400);
  await admin.getByRole("alert").getByText("The end time must look like").waitFor();
  assert.equal(await admin.getByLabel("Action").inputValue(), "CreateTagOption");

  const refused = await user.goto(`${BASE}/console/admin/audit`);
  assert.equal(refused.status(), 403);
  await user.goto(`${BASE}/console/catalog`);
});

test("the administrator manages users and roles: the secret shown once, names for owners, a picker for grants", async () => {
  await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users" }).click();
  await admin.getByRole("heading", { name: "Users", exact: true }).waitFor();
  // A name that breaks the rule is refused beside the form, the input kept.
  await admin.getByLabel("User name (required)").fill("no spaces allowed");
  await admin.getByRole("button", { name: "Create user" }).click();
  await admin.getByRole("alert").getByText("is not valid").waitFor();
  assert.equal(await admin.getByLabel("User name (required)").inputValue(), "no spaces allowed");

  await admin.getByLabel("User name (required)").fill(`console-${RUN}`);
  await admin.getByLabel(/^Roles/).fill(`ops-${RUN}`);
  await admin.getByRole("button", { name: "Create user" }).click();
  const key = admin.locator("#new-key dd code");
  const [id, secret] = [await key.nth(0).innerText(), await key.nth(1).innerText()];
  assert.match(id, /^LTAI/);
  await shot(admin, "16-user-created");
  // The secret is shown once: not on the next visit of the page.
  await admin.goto(`${BASE}/console/admin/users`);
  assert.ok(!(await admin.content()).includes(secret), "the secret is never shown again");
  await admin.locator("tbody tr", { hasText: `console-${RUN}` }).getByText(`ops-${RUN}`).waitFor();

  // The new key signs in.
  const newcomer = await openBrowser();
  await signIn(newcomer, id, secret);

  await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Roles" }).click();
  const role = admin.locator("tbody tr", { hasText: `ops-${RUN}` });
  await role.getByText(`console-${RUN}`).waitFor();
  await admin.getByLabel("Role name (required)").fill(`qa-${RUN}`);
  await admin.getByRole("button", { name: "Create role" }).click();
  const qa = admin.locator("tbody tr", { hasText: `qa-${RUN}` });
  await qa.getByLabel(`User to add to qa-${RUN}`).selectOption(`console-${RUN}`);
  await qa.getByRole("button", { name: `Add to qa-${RUN}` }).click();
  const removeMember = qa.getByRole("button", { name: `Remove console-${RUN} from qa-${RUN}` });
  await removeMember.waitFor();
  // A member leaves a role with the Remove button beside its name (the change is audited).
  await removeMember.click();
  await admin.waitForURL(/\/console\/admin\/roles$/);
  await removeMember.waitFor({ state: "detached" });
  await qa.getByLabel(`User to add to qa-${RUN}`).selectOption(`console-${RUN}`);
  await qa.getByRole("button", { name: `Add to qa-${RUN}` }).click();
  await removeMember.waitFor();
  await admin.getByLabel("Role name (required)").fill(`qa-${RUN}`);
  await admin.getByRole("button", { name: "Create role" }).click();
  await admin.getByRole("alert").getByText("exists already").waitFor();
  await shot(admin, "17-roles");
  await admin.locator("tbody tr", { hasText: `qa-${RUN}` }).getByRole("button", { name: `Delete qa-${RUN}` }).click();
  await admin.waitForURL(/\/console\/admin\/roles$/);
  assert.equal(await admin.locator("tbody tr", { hasText: `qa-${RUN}` }).count(), 0);

  // The grant form offers users and roles by name.
  await admin.goto(`${BASE}/console/admin/portfolios`);
  await admin.getByRole("link", { name: `Browser portfolio ${RUN}` }).click();
  const offered = await admin.locator("datalist#principals option").evaluateAll((options) => options.map((o) => o.textContent));
  assert.ok(offered.includes(`User console-${RUN}`) && offered.includes(`Role ops-${RUN}`), offered.join(", "));

  // Owners are shown by name.
  await admin.goto(`${BASE}/console/provisioned?scope=account`);
  await admin.locator("tbody tr", { hasText: `planned-${RUN}` }).getByRole("cell", { name: USER, exact: true }).waitFor();
  assert.ok(!(await admin.locator("tbody").innerText()).match(/\b\d{16}\b/), "no numeric owner ids");

  // Deleting the user ends its sessions.
  await admin.goto(`${BASE}/console/admin/users`);
  await admin.locator("tbody tr", { hasText: `console-${RUN}` }).getByRole("button", { name: `Delete console-${RUN}` }).click();
  await admin.waitForURL(/\/console\/admin\/users$/);
  assert.equal(await admin.locator("tbody tr", { hasText: `console-${RUN}` }).count(), 0);
  await newcomer.goto(`${BASE}/console/provisioned`);
  assert.match(newcomer.url(), /\/console\/sign-in$/);

  const refused = await user.goto(`${BASE}/console/admin/users`);
  assert.equal(refused.status(), 403);
  await user.goto(`${BASE}/console/catalog`);
});

test("every console page carries the security headers and runs without a CSP violation", async () => {
  for (const url of [`${BASE}/console/catalog`, `${BASE}/console/admin/products`, provisionedUrl, `${BASE}/console/plans`]) {
    const response = await admin.goto(url);
    const headers = response.headers();
    assert.match(headers["content-security-policy"] ?? "", /script-src 'self';/, url);
    assert.match(headers["content-security-policy"], /frame-ancestors 'none'/, url);
    assert.doesNotMatch(headers["content-security-policy"], /unsafe-inline/, url);
    assert.equal(headers["referrer-policy"], "no-referrer", url);
    assert.equal(headers["x-content-type-options"], "nosniff", url);
  }
  // The pages above and every page the earlier tests used (forms, template upload, live log) ran
  // their script and styles under the policy.
  assert.deepEqual(cspViolations, []);
  // An inline script injected the way an attacker would is blocked and reported.
  await admin.goto(`${BASE}/console/catalog`);
  const blocked = await admin.evaluate(() => new Promise((resolve) => {
    document.addEventListener("securitypolicyviolation", (event) => resolve(event.violatedDirective), { once: true });
    const script = document.createElement("script");
    script.textContent = "window.injected = true";
    document.body.append(script);
    setTimeout(() => resolve(window.injected ? "ran" : "no report"), 2000);
  }));
  assert.match(blocked, /^script-src/);
  cspViolations.length = 0;
});

test("signing out ends the session", async () => {
  await user.getByRole("button", { name: "Sign out" }).click();
  await user.waitForURL(/\/console\/sign-in$/);
  await user.goto(`${BASE}/console/provisioned`);
  assert.match(user.url(), /\/console\/sign-in$/);
});

test("repeated wrong secrets throttle that AccessKey, not the others signing in from the same address", async () => {
  const make = (name) => JSON.parse(execFileSync(BIN, ["users", "create", name, "--json", "--data-dir", DATA_DIR], { encoding: "utf8" }));
  const target = make(`throttled-${RUN}`);
  const other = make(`neighbour-${RUN}`);
  const page = await openBrowser();
  const attempt = async (id, secret) => {
    await page.goto(`${BASE}/console/sign-in`);
    await page.getByLabel("AccessKey ID").fill(id);
    await page.getByLabel("AccessKey secret").fill(secret);
    const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === "POST"), page.getByRole("button", { name: "Sign in" }).click()]);
    return response;
  };
  for (let n = 0; n < 5; n++) {
    assert.equal((await attempt(target.AccessKeyId, `wrong-${n}`)).status(), 401, `wrong secret ${n + 1}`);
  }
  // Throttled now, even with the right secret: it is not even checked.
  const refused = await attempt(target.AccessKeyId, target.AccessKeySecret);
  assert.equal(refused.status(), 429);
  assert.ok(Number(refused.headers()["retry-after"]) > 0);
  await page.getByRole("alert").getByText(/Too many failed sign-ins with this AccessKey ID: try again in \d+ seconds?/).waitFor();
  await shot(page, "14-sign-in-throttled");
  assert.ok(!(await page.content()).includes(target.AccessKeySecret));
  // Another key from the same browser and address still signs in.
  await attempt(other.AccessKeyId, other.AccessKeySecret);
  await page.waitForURL(/\/console\/catalog/);
});
