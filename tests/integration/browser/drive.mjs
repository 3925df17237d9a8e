// Drives Debian's Chromium (playwright-core, no downloaded browser) through the LoRA Workbench panels
// in a real ComfyUI. Called by tests/integration/test_browser.py:
//   node drive.mjs config.json
// config: {url, out_dir, chromium, project, library, ckpt, workflow?, legacy_workflow?, subsets: [names],
//          train: bool, train_timeout_s, max_train_steps, samples, settings?: {key: value} to save in
//          the settings dialog, help_nodes?: [types], api_runs?: bool (a run queued through /prompt with
//          no training node on the canvas, one cancelled from the Training tab, then a page reload),
//          thumbnails?: [{name, path}] (screenshots of example workflows into out_dir/thumbnails/<name>.jpg),
//          mode?: "thumbnails" (only the thumbnails, for scripts/resave_examples.py --thumbnails) |
//          "captions" (only the caption editor scenario, with captions: {subset, image, caption, tag,
//          conflict_image, conflict_file}) | "install" (Install sd-scripts in the settings dialog, then the SD
//          example on a plain folder: example: {path, widgets: {nodeType: {widget: value}}}, install_timeout_s)}
// Writes out_dir/result.json (what it saw, step by step) and PNG screenshots into out_dir. Exits 0
// when the script ran to the end; the Python test judges the result.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = cfg.out_dir;
fs.mkdirSync(out, { recursive: true });
const result = { steps: {}, console_errors: [], page_errors: [], screenshots: [] };
const save = () => fs.writeFileSync(path.join(out, "result.json"), JSON.stringify(result, null, 2));
const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "lw-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: cfg.chromium || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1600, height: 1000 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
const page = context.pages()[0] ?? await context.newPage();
page.on("console", (m) => { if (m.type() === "error") result.console_errors.push(m.text()); });
page.on("pageerror", (e) => result.page_errors.push(String(e?.stack || e)));
result.failed_responses = [];
result.expected_failures = []; // answers the test provoked on purpose (a bad path in the settings dialog)
page.on("response", (r) => { if (r.status() >= 400) result.failed_responses.push({ url: r.url(), status: r.status() }); });
// Nothing may load from the internet: record any request that leaves 127.0.0.1.
result.external_requests = [];
page.on("request", (r) => {
  const u = new URL(r.url());
  if (!["127.0.0.1", "localhost"].includes(u.hostname) && !u.protocol.startsWith("data") && !u.protocol.startsWith("blob")) {
    result.external_requests.push({ url: r.url(), type: r.resourceType() });
  }
});

async function shot(name, locator) {
  const file = path.join(out, `${name}.png`);
  if (locator) await locator.screenshot({ path: file });
  else await page.screenshot({ path: file });
  result.screenshots.push(file);
  log("screenshot", file);
}

async function step(name, fn) {
  log("step", name);
  try {
    result.steps[name] = { ok: true, ...(await fn() ?? {}) };
  } catch (err) {
    result.steps[name] = { ok: false, error: String(err?.stack || err) };
    log("FAILED", name, err?.message || err);
  }
  save();
  return result.steps[name];
}

/** Bring a node's panel into view at zoom 1 (DOM widgets outside the visible canvas are hidden). */
async function focusNode(type, widgetName) {
  await page.evaluate(({ type, widgetName }) => {
    const app = window.comfyAPI.app.app;
    const node = app.graph.nodes.find((n) => n.type === type);
    if (!node) return;
    const w = widgetName ? node.widgets?.find((x) => x.name === widgetName) : null;
    const ds = app.canvas.ds;
    ds.scale = 1;
    ds.offset[0] = -node.pos[0] + 60;
    ds.offset[1] = -(node.pos[1] + (w?.y ?? 0)) + (w ? 120 : 80);
    app.canvas.setDirty(true, true);
  }, { type, widgetName });
  await page.waitForTimeout(500);
}

/** Put a node at a fixed place on an empty canvas at zoom 1 and click its title (a real selection). */
async function placeAndSelect(type) {
  await page.evaluate((type) => {
    const app = window.comfyAPI.app.app;
    app.graph.clear();
    const n = window.LiteGraph.createNode(type);
    n.pos = [420, 260];
    app.graph.add(n);
    app.canvas.ds.scale = 1;
    app.canvas.ds.offset[0] = 0;
    app.canvas.ds.offset[1] = 0;
    app.canvas.setDirty(true, true);
  }, type);
  await page.waitForTimeout(400);
  const [x, y] = await page.evaluate(() => {
    const app = window.comfyAPI.app.app;
    return app.canvasPosToClientPos([app.graph.nodes[0].pos[0] + 60, app.graph.nodes[0].pos[1] - 15]);
  });
  await page.mouse.click(x, y);
  await page.waitForTimeout(500);
}

const command = (id) => page.evaluate((id) => window.comfyAPI.app.app.extensionManager.command.execute(id), id);
const TAB_COMMAND = "Workspace.ToggleBottomPanelTab.lora-workbench.training";

/** Show the Training tab (the command toggles: only run it when the tab is not showing). */
async function showTrainingTab() {
  if (!(await page.locator(".lw-tab").isVisible().catch(() => false))) await command(TAB_COMMAND);
  await page.locator(".lw-tab").waitFor({ state: "visible", timeout: 20000 });
}

async function hideTrainingTab() {
  if (await page.locator(".lw-tab").isVisible().catch(() => false)) await command(TAB_COMMAND);
}

/** What the Training tab shows now. */
const tabState = () => page.evaluate(() => {
  const t = document.querySelector(".lw-tab");
  return {
    runs: [...document.querySelectorAll(".lw-run")].map((b) => ({ dir: b.dataset.dir, state: b.dataset.state })),
    selected: t?.dataset.selected || "", state: t?.dataset.state || "",
    points: Number(t?.querySelector("canvas")?.dataset.points || 0),
    log_lines: Number(t?.querySelector("[data-role=log]")?.dataset.lines || 0),
    files: [...(t?.querySelectorAll(".lw-file") || [])].map((f) => f.dataset.kind),
    cancel_enabled: !(t?.querySelector(".lw-tab-detail .lw-head button[data-role=cancel]")?.disabled ?? true),
  };
});

/** Wait until `pred(tabState())` holds; returns the last state. */
async function waitTab(pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let st;
  while (Date.now() < deadline) {
    st = await tabState();
    if (pred(st)) return st;
    await page.waitForTimeout(500);
  }
  throw new Error(`the Training tab never showed ${what}: ${JSON.stringify(st)}`);
}

/** An API-format prompt for dataset -> trainer from the server's node definitions (defaults for
 * everything not set here), so it follows the nodes' current widgets. */
async function apiPrompt(overrides) {
  return await page.evaluate(async ({ cfg, overrides }) => {
    const info = async (t) => (await (await fetch(`/api/object_info/${t}`)).json())[t];
    const defaults = (def) => {
      const out = {};
      for (const [name, spec] of Object.entries(def.input.required || {})) {
        const [type, opts] = spec;
        if (opts && "default" in opts) out[name] = opts.default;
        else if (Array.isArray(type) && type.length) out[name] = type[0];
      }
      return out;
    };
    // Inputs the node has: its widgets, optional inputs, or the first layout's inputs it still takes.
    const only = (def, values) => Object.fromEntries(Object.entries(values).filter(([k]) =>
      k in (def.input.required || {}) || k in (def.input.optional || {}) || k in (def.input.hidden || {})));
    const dsDef = await info("DatasetSubsetWeights");
    const trDef = await info("KohyaLoRATrain");
    const ds = { ...defaults(dsDef), ...only(dsDef, { project_folder: cfg.project, width: 64, height: 64,
      enable_bucket: false, batch_size: 1, epochs: 1, weights: cfg.subsets.map((s) => `${s}: 1`).join("\n") }) };
    const tr = { ...defaults(trDef), ...only(trDef, { ckpt_name: cfg.ckpt, epochs: 1, width: 64, height: 64,
      network_dim: 4, network_alpha: 4, device: "cpu", ...overrides }), dataset: ["1", 0] };
    return { 1: { class_type: "DatasetSubsetWeights", inputs: ds }, 2: { class_type: "KohyaLoRATrain", inputs: tr } };
  }, { cfg, overrides });
}

/** First run (cfg.mode "install"): Install sd-scripts from the settings dialog, watch its progress and
 * verdict, then queue the SD example on a plain folder of mixed-size photos (cfg.example: {path,
 * project, ckpt, widgets: {nodeType: {widget: value}}}) and wait for its sample image. */
async function installSteps() {
  const row = page.locator('.lw-setting[data-key="managed_trainer"]');
  const rowState = async () => ({
    status: await row.getAttribute("data-status"),
    inUse: (await row.locator("[data-role=in-use]").textContent()) || "",
    step: (await row.locator("[data-role=step]").textContent()) || "",
    line: (await row.locator("[data-role=line]").textContent()) || "",
    verdict: (await row.locator("[data-role=verdict]").textContent()) || "",
    install: await row.locator("[data-role=install]").textContent(),
  });
  await step("install_open", async () => {
    await command("Comfy.ShowSettingsDialog");
    await page.locator(".settings-sidebar").getByText("LoRA Workbench", { exact: true }).click();
    await row.waitFor({ state: "visible", timeout: 20000 });
    await page.waitForFunction(() => document.querySelector('[data-key="managed_trainer"] [data-role=in-use]')
      ?.textContent.trim().length > 0, null, { timeout: 20000 });
    await row.scrollIntoViewIfNeeded();
    await shot("install_before", page.locator(".settings-container"));
    return { state: await rowState() };
  });
  await step("install_progress", async () => {
    await row.locator("[data-role=install]").click();
    await page.waitForSelector('.lw-setting[data-key="managed_trainer"][data-status="running"]', { timeout: 30000 });
    // pip's lines: wait for the requirements step to show one
    await page.waitForFunction(() => {
      const r = document.querySelector('[data-key="managed_trainer"]');
      return r?.dataset.status !== "running" || (r.querySelector("[data-role=step]")?.textContent.includes("pip")
        || r.querySelector("[data-role=line]")?.textContent.length > 10);
    }, null, { timeout: 600000, polling: 500 });
    await shot("install_progress", page.locator(".settings-container"));
    return { state: await rowState() };
  });
  await step("install_done", async () => {
    await page.waitForFunction(() => {
      const s = document.querySelector('[data-key="managed_trainer"]')?.dataset.status;
      return s && s !== "running";
    }, null, { timeout: (cfg.install_timeout_s || 1200) * 1000, polling: 1000 });
    await page.waitForTimeout(1500); // the status line refreshes after the verdict
    await shot("install_done", page.locator(".settings-container"));
    return { state: await rowState() };
  });
  await page.keyboard.press("Escape");
  if (!cfg.example) return;
  await step("example_run", async () => {
    const wf = JSON.parse(fs.readFileSync(cfg.example.path, "utf8"));
    await page.evaluate(async (wf) => { await window.comfyAPI.app.app.loadGraphData(wf); }, wf);
    await page.waitForTimeout(1000);
    const set = await page.evaluate((ex) => {
      const app = window.comfyAPI.app.app;
      const done = [];
      for (const node of app.graph.nodes) {
        const want = ex.widgets[node.type] || {};
        for (const w of node.widgets || []) {
          if (w.name in want) { w.value = want[w.name]; w.callback?.(w.value); done.push(`${node.type}.${w.name}`); }
        }
      }
      return done;
    }, cfg.example);
    await command("Comfy.Canvas.FitView");
    const before = await page.evaluate(async () => Object.keys(await (await fetch("/api/history")).json()).length);
    await page.evaluate(() => window.comfyAPI.app.app.queuePrompt(0, 1));
    // waitForFunction takes no async predicate (its promise is truthy at once): poll from here
    const deadline = Date.now() + (cfg.train_timeout_s || 900) * 1000;
    for (;;) {
      const finished = await page.evaluate(async (n) => {
        const runs = Object.values(await (await fetch("/api/history")).json());
        return runs.length > n && runs.every((r) => r.status?.completed || r.status?.status_str === "error");
      }, before);
      if (finished) break;
      if (Date.now() > deadline) throw new Error("the example did not finish in time");
      await page.waitForTimeout(2000);
    }
    const history = await page.evaluate(async () => Object.values(await (await fetch("/api/history")).json()).pop());
    await page.waitForTimeout(1500);
    await command("Comfy.Canvas.FitView");
    await page.waitForTimeout(800);
    await shot("example_after_run");
    return { set, status: history.status, outputs: Object.keys(history.outputs || {}),
      images: Object.values(history.outputs || {}).flatMap((o) => o.images || []).map((i) => i.filename) };
  });
}

/** What the caption editor shows now: its subset, cards (image, text, missing, dirty), tags, message. */
const captionState = () => page.evaluate(() => {
  const ed = document.querySelector(".lw-caption-editor");
  return {
    status: ed?.dataset.status || "", subset: ed?.dataset.subset || "", dirty: Number(ed?.dataset.dirty || 0),
    cards: [...(ed?.querySelectorAll(".lw-cap-card") || [])].map((c) => ({ image: c.dataset.image,
      text: c.querySelector("textarea")?.value ?? "", missing: c.classList.contains("missing"),
      dirty: c.classList.contains("dirty"), thumb: c.querySelector("img")?.naturalWidth || 0 })),
    tags: [...(ed?.querySelectorAll(".lw-cap-tags .lw-chip") || [])].map((b) => b.textContent),
    message: ed?.querySelector("[data-role=message]")?.textContent || "",
  };
});

/** Wait for the editor to show a subset with every thumbnail decoded. */
async function captionEditorReady() {
  await page.waitForSelector(".lw-caption-editor[data-status=ok]", { timeout: 30000 });
  await page.waitForFunction(() => [...document.querySelectorAll(".lw-cap-card img")]
    .every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 30000 });
  await page.waitForTimeout(300);
}

/** The caption editor scenario (cfg.mode "captions", cfg.captions: {subset, image, caption, tag,
 * conflict_image, conflict_file}): open it from the dataset node, edit one caption, bulk add a tag,
 * save, reload the page and open it from the Training tab, then provoke a conflict. */
async function captionEditorSteps(c) {
  const editor = page.locator(".lw-caption-editor");
  await step("captions_open", async () => {
    await page.evaluate((project) => {
      const app = window.comfyAPI.app.app;
      app.graph.clear();
      const n = window.LiteGraph.createNode("DatasetSubsetWeights");
      n.pos = [40, 60];
      app.graph.add(n);
      const w = n.widgets.find((x) => x.name === "project_folder");
      w.value = project;
      w.callback?.(project);
    }, cfg.project);
    await focusNode("DatasetSubsetWeights", "lora_workbench_weights_editor");
    await page.waitForSelector(".lw-weights-editor[data-status=ok]", { timeout: 30000 });
    await shot("caption_editor_button", page.locator(".lw-weights-editor"));
    await page.locator(".lw-weights-editor [data-role=open-captions]").click();
    await captionEditorReady();
    if ((await captionState()).subset !== c.subset) {
      await editor.locator("[data-role=subset]").selectOption(c.subset);
      await page.waitForFunction((k) => document.querySelector(".lw-caption-editor")?.dataset.subset === k, c.subset);
      await captionEditorReady();
    }
    await shot("caption_editor_opened", editor);
    return { state: await captionState(),
      subsets: await editor.locator("[data-role=subset] option").evaluateAll((os) => os.map((o) => o.value)) };
  });
  await step("captions_edit", async () => {
    await editor.locator(`textarea[data-image="${c.image}"]`).fill(c.caption);
    await page.waitForTimeout(200);
    await shot("caption_editor_edited", editor);
    return { state: await captionState() };
  });
  await step("captions_bulk_add", async () => {
    await editor.locator("[data-role=bulk-op]").selectOption("add");
    await editor.locator("[data-role=bulk-tag]").fill(c.tag);
    await editor.locator("[data-role=bulk-apply]").click();
    await page.waitForFunction(() => /changed/.test(document.querySelector(".lw-caption-editor [data-role=message]")?.textContent || ""),
      null, { timeout: 20000 });
    await shot("caption_editor_bulk_add", editor);
    return { state: await captionState() };
  });
  await step("captions_save", async () => {
    await editor.locator("[data-role=save]").click();
    await page.waitForSelector(".lw-caption-editor[data-status=saved]", { timeout: 30000 });
    await captionEditorReady().catch(() => {});
    await shot("caption_editor_saved", editor);
    return { state: await captionState() };
  });
  await step("captions_reload", async () => {
    // A fresh page: the captions come back from disk, here through a run's project in the Training tab.
    await page.reload({ waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => window.comfyAPI?.app?.app?.extensionManager
      && window.LiteGraph?.registered_node_types?.DatasetSubsetWeights, null, { timeout: 60000 });
    await page.waitForTimeout(1000);
    await showTrainingTab();
    const button = page.locator(".lw-tab [data-role=open-captions]");
    await page.waitForSelector(".lw-tab [data-role=open-captions]:not([disabled])", { timeout: 30000 });
    await button.click();
    await page.waitForSelector(".lw-caption-editor[data-status=ok]", { timeout: 30000 });
    if ((await captionState()).subset !== c.subset) {
      await editor.locator("[data-role=subset]").selectOption(c.subset);
      await page.waitForFunction((k) => document.querySelector(".lw-caption-editor")?.dataset.subset === k, c.subset);
    }
    await captionEditorReady();
    await shot("caption_editor_after_reload", editor);
    return { state: await captionState() };
  });
  await step("captions_conflict", async () => {
    // Someone changes a caption on disk while it is edited here: the save is refused, the edit kept.
    result.expected_failures.push("/lora_workbench/captions/save");
    await editor.locator(`textarea[data-image="${c.conflict_image}"]`).fill("edited in the browser");
    fs.writeFileSync(c.conflict_file, "changed on disk meanwhile", "utf8");
    await editor.locator("[data-role=save]").click();
    await page.waitForSelector(".lw-caption-editor[data-status=error]", { timeout: 30000 });
    await page.waitForTimeout(200);
    await shot("caption_editor_conflict", editor);
    const state = await captionState();
    await page.keyboard.press("Escape"); // unsaved edits: the editor asks first
    return { state, on_disk: fs.readFileSync(c.conflict_file, "utf8") };
  });
}

try {
  await step("open", async () => {
    await page.goto(cfg.url, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => window.comfyAPI?.app?.app?.graph && window.LiteGraph, null, { timeout: 60000 });
    await page.waitForFunction(
      () => window.comfyAPI.app.app.extensionManager && window.LiteGraph.registered_node_types?.KohyaLoRATrain,
      null, { timeout: 60000 });
    const info = await page.evaluate(() => ({
      version: window.__COMFYUI_FRONTEND_VERSION__ ?? null,
      types: Object.keys(window.LiteGraph.registered_node_types).filter((t) =>
        ["DatasetSubsetWeights", "KohyaLoRATrain", "LinkModelLibrary", "LoadTrainedLoRA"].includes(t)),
    }));
    return info;
  });

  if (cfg.mode === "install") {
    // First run (test_browser.py's own test): the settings dialog's Install, then the example.
    await installSteps();
    save();
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
    log("done");
    process.exit(0);
  }

  if (cfg.mode === "captions") {
    // The caption editor alone (test_browser.py's own test): nothing else on this page.
    page.on("dialog", (d) => d.accept());
    await captionEditorSteps(cfg.captions);
    save();
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
    log("done");
    process.exit(0);
  }

  if (cfg.thumbnails?.length) {
    await step("thumbnails", async () => {
      // Template thumbnails: each example workflow as the real frontend draws it on a fresh page (no
      // run, no link pass yet: the panels show what a new user sees), fitted, menus hidden (focus
      // mode), full node detail at any zoom, cut to the graph's own bounds.
      const setting = (id, v) => page.evaluate(({ id, v }) => window.comfyAPI.app.app.extensionManager.setting.set(id, v), { id, v });
      await page.setViewportSize({ width: 1280, height: 720 });
      await setting("Comfy.Minimap.Visible", false);
      await setting("Comfy.Graph.CanvasInfo", false);
      await setting("LiteGraph.Canvas.MinFontSizeForLOD", 1);
      await command("Workspace.ToggleFocusMode");
      fs.mkdirSync(path.join(out, "thumbnails"), { recursive: true });
      const made = {};
      for (const t of cfg.thumbnails) {
        const wf = JSON.parse(fs.readFileSync(t.path, "utf8"));
        await page.evaluate(async (wf) => { await window.comfyAPI.app.app.loadGraphData(wf); }, wf);
        await page.waitForTimeout(1000);
        await command("Comfy.Canvas.FitView");
        await page.waitForTimeout(1500);
        const clip = await page.evaluate(() => {
          const app = window.comfyAPI.app.app;
          const title = window.LiteGraph.NODE_TITLE_HEIGHT || 30;
          const boxes = [
            ...app.graph.nodes.map((n) => [n.pos[0], n.pos[1] - title, n.pos[0] + n.size[0], n.pos[1] + n.size[1]]),
            ...(app.graph.groups || []).map((g) => {
              const b = g._bounding ?? [g.pos[0], g.pos[1], g.size[0], g.size[1]];
              return [b[0], b[1], b[0] + b[2], b[1] + b[3]];
            }),
          ];
          const [x0, y0] = app.canvasPosToClientPos([Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1]))]);
          const [x1, y1] = app.canvasPosToClientPos([Math.max(...boxes.map((b) => b[2])), Math.max(...boxes.map((b) => b[3]))]);
          const x = Math.max(0, x0 - 16), y = Math.max(0, y0 - 16);
          return { x, y, width: Math.min(window.innerWidth - x, x1 - x0 + 32), height: Math.min(window.innerHeight - y, y1 - y0 + 32) };
        });
        const file = path.join(out, "thumbnails", `${t.name}.jpg`);
        await page.screenshot({ path: file, type: "jpeg", quality: 90, clip });
        result.screenshots.push(file);
        made[t.name] = { file, clip, nodes: await page.evaluate(() => window.comfyAPI.app.app.graph.nodes.map((n) => n.type)) };
      }
      await command("Workspace.ToggleFocusMode");
      await setting("Comfy.Minimap.Visible", true);
      await setting("Comfy.Graph.CanvasInfo", true);
      await page.evaluate(() => window.comfyAPI.app.app.graph.clear());
      await page.setViewportSize({ width: 1600, height: 1000 });
      return made;
    });
  }

  if (cfg.mode === "thumbnails") {
    save();
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
    log("done");
    process.exit(0);
  }

  for (const type of cfg.help_nodes || []) {
    await step(`help_${type}`, async () => {
      // What a person does: select the node, press the (i) button of the selection toolbox.
      await placeAndSelect(type);
      await page.locator('[data-testid="info-button"]').click();
      const content = page.locator(".node-help-content .markdown-content");
      await content.locator("h2").first().waitFor({ state: "visible", timeout: 20000 });
      await page.waitForTimeout(300);
      const seen = await page.evaluate(() => {
        const c = document.querySelector(".node-help-content .markdown-content");
        return { h1: c.querySelector("h1")?.textContent, h2: [...c.querySelectorAll("h2")].map((h) => h.textContent),
          items: c.querySelectorAll("li").length, fallback: Boolean(document.querySelector(".node-help-content .fallback-content")),
          text: c.textContent.slice(0, 20000) };
      });
      const helpPanel = page.locator(".node-help-content").locator("..");
      await shot(`help_${type}`, helpPanel);
      const faq = content.locator("h2", { hasText: "FAQ" });
      if (await faq.count()) {
        await faq.first().scrollIntoViewIfNeeded();
        await page.waitForTimeout(300);
        await shot(`help_${type}_faq`, helpPanel);
      }
      await command("Workspace.ToggleSidebarTab.node-library"); // close the sidebar again
      await page.waitForTimeout(300);
      return seen;
    });
  }

  if (cfg.settings) {
    await step("settings_dialog", async () => {
      await command("Comfy.ShowSettingsDialog");
      await page.locator(".settings-sidebar").getByText("LoRA Workbench", { exact: true }).click();
      await page.locator(".lw-setting").first().waitFor({ state: "visible", timeout: 20000 });
      const row = (key) => page.locator(`.lw-setting[data-key="${key}"]`);
      const save = async (key, value, status) => {
        await row(key).locator("input").fill(value);
        await row(key).locator("button").click();
        await page.waitForSelector(`.lw-setting[data-key="${key}"][data-status="${status}"]`, { timeout: 120000 });
        return (await row(key).locator("[data-role=message]").textContent()) || "";
      };
      // A folder outside the allowed roots: the dialog says so and nothing is saved.
      const firstKey = Object.keys(cfg.settings)[0];
      result.expected_failures.push("/lora_workbench/settings");
      const refused = await save(firstKey, "/nonexistent/venv/bin/python", "error");
      await shot("settings_dialog_error", page.locator(".settings-container"));
      const saved = {};
      for (const [key, value] of Object.entries(cfg.settings)) saved[key] = await save(key, value, "saved");
      await page.waitForTimeout(300);
      await shot("settings_dialog_saved", page.locator(".settings-container"));
      // The paths that decide what code runs: shown read-only, with the command that sets them.
      const readOnly = {};
      for (const key of cfg.read_only_settings || []) {
        readOnly[key] = {
          status: await row(key).getAttribute("data-status"),
          buttons: await row(key).locator("button").count(),
          editable: await row(key).locator("input").isEditable(),
          value: await row(key).locator("input").inputValue(),
          text: (await row(key).locator("[data-role=message]").textContent()) || "",
        };
      }
      const server = await page.evaluate(async () => (await fetch("/api/lora_workbench/settings")).json());
      await page.keyboard.press("Escape");
      await page.waitForTimeout(300);
      return {
        refused, saved, readOnly, server: Object.fromEntries(server.settings.map((x) => [x.key, x.value])),
      };
    });
  }

  await step("graph", async () => {
    const wf = cfg.workflow ? JSON.parse(fs.readFileSync(cfg.workflow, "utf8")) : null;
    return await page.evaluate(async ({ cfg, wf }) => {
      const app = window.comfyAPI.app.app;
      const LG = window.LiteGraph;
      const set = (node, name, value) => {
        const w = node.widgets?.find((x) => x.name === name);
        if (w) { w.value = value; w.callback?.(value); }
        return Boolean(w);
      };
      if (wf) await app.loadGraphData(wf);
      else app.graph.clear();
      // A workflow saved before the `repeats` widget existed: the editor migrates it on load.
      const loaded = app.graph.nodes.find((n) => n.type === (cfg.dataset_node || "DatasetSubsetWeights"));
      const repeatsAfterLoad = loaded?.widgets?.find((w) => w.name === "repeats")?.value ?? null;
      const find = (type) => app.graph.nodes.find((n) => n.type === type);
      const add = (type, pos) => {
        if (!LG.registered_node_types[type]) return null;
        const n = LG.createNode(type);
        n.pos = pos;
        app.graph.add(n);
        return n;
      };
      const dsType = cfg.dataset_node || "DatasetSubsetWeights";
      const ds = find(dsType) ?? add(dsType, [40, 60]);
      const tr = find("KohyaLoRATrain") ?? add("KohyaLoRATrain", [720, 60]);
      const bottom = Math.max(0, ...app.graph.nodes.map((n) => n.pos[1] + n.size[1]));
      const lib = find("LinkModelLibrary") ?? add("LinkModelLibrary", [40, bottom + 80]);
      if (ds) {
        if (!set(ds, "project_folder", cfg.project)) set(ds, "project", cfg.project);
        set(ds, "width", 64); set(ds, "height", 64);
        set(ds, "enable_bucket", false); set(ds, "batch_size", 1); set(ds, "epochs", 1);
        set(ds, "weights", cfg.subsets.map((s) => `${s}: 1`).join("\n"));
      }
      if (tr) {
        set(tr, "ckpt_name", cfg.ckpt);
        set(tr, "epochs", 1); set(tr, "width", 64); set(tr, "height", 64);
        set(tr, "network_dim", 4); set(tr, "network_alpha", 4);
        if (ds && !tr.inputs?.find((i) => i.name === "dataset")?.link) {
          const slot = tr.inputs.findIndex((i) => i.name === "dataset");
          ds.connect(0, tr, slot);
        }
        // The rest through two chained option nodes, as a user adds them: optimizer -> sampling -> trainer.
        const below = Math.max(...app.graph.nodes.filter((n) => n.pos[0] < tr.pos[0] && n.pos[0] + n.size[0] > tr.pos[0] - 420)
          .map((n) => n.pos[1] + n.size[1]), 0);
        const opt = add("KohyaOptimizerOptions", [tr.pos[0] - 410, below + 60]);
        // the SD example has its own sampling node already: the optimizer goes in front of it
        const smp = app.graph.nodes.find((n) => n.type === "KohyaSamplingOptions")
          ?? add("KohyaSamplingOptions", [tr.pos[0] - 410, below + 320]);
        if (opt && smp) {
          set(opt, "max_train_steps", cfg.max_train_steps || 0);
          if (cfg.samples) { set(smp, "show_samples", true); set(smp, "sample_steps", 2); }
          opt.connect(0, smp, smp.inputs.findIndex((i) => i.name === "options"));
          smp.connect(0, tr, tr.inputs.findIndex((i) => i.name === "options"));
        }
      }
      if (lib) {
        set(lib, "library", cfg.library);
        set(lib, "watch", true);
        set(lib, "link_comfyui", true);
      }
      app.graph.setDirtyCanvas(true, true);
      return { dataset: Boolean(ds), editor: Boolean(ds) && dsType === "DatasetSubsetWeights", train: Boolean(tr),
        repeats_after_load: repeatsAfterLoad,
        library: Boolean(lib),
        nodes: app.graph.nodes.map((n) => n.type) };
    }, { cfg, wf });
  });

  const hasDataset = result.steps.graph?.dataset;

  await step("short_node", async () => {
    // The short trainer and its two option nodes, side by side at zoom 0.9.
    const info = await page.evaluate(() => {
      const app = window.comfyAPI.app.app;
      const tr = app.graph.nodes.find((n) => n.type === "KohyaLoRATrain");
      const opts = app.graph.nodes.filter((n) => n.type.startsWith("Kohya") && n.type.endsWith("Options"));
      const left = Math.min(tr.pos[0], ...opts.map((n) => n.pos[0]));
      const top = Math.min(tr.pos[1], ...opts.map((n) => n.pos[1]));
      const ds = app.canvas.ds;
      ds.scale = 0.65;
      ds.offset[0] = -left + 30;
      ds.offset[1] = -Math.min(top, tr.pos[1]) + 40;
      app.canvas.setDirty(true, true);
      const link = (node, name) => node.inputs.find((i) => i.name === name)?.link ?? null;
      const serialized = tr.serialize();
      return {
        trainer_widgets: tr.widgets.filter((w) => w.serialize !== false && !w.name.startsWith("lora_workbench")).map((w) => w.name),
        trainer_values: serialized.widgets_values.length,
        trainer_options_linked: link(tr, "options") != null,
        option_nodes: opts.map((n) => ({ type: n.type, widgets: n.widgets.map((w) => w.name),
          options_linked: link(n, "options") != null, feeds: (n.outputs[0].links ?? []).length })),
      };
    });
    await page.waitForTimeout(600);
    await shot("short_node_with_options");
    return info;
  });

  if (result.steps.graph?.editor) {
    await step("weights_editor", async () => {
      await focusNode("DatasetSubsetWeights", "lora_workbench_weights_editor");
      const editor = page.locator(".lw-weights-editor");
      await editor.waitFor({ state: "visible", timeout: 30000 });
      await page.waitForSelector(".lw-weights-editor[data-status=ok] td.lw-repeats", { timeout: 30000 });
      const read = () => page.evaluate(() => Object.fromEntries(
        [...document.querySelectorAll(".lw-weights-editor td.lw-repeats")].map((td) => [td.dataset.subset, td.textContent])));
      const before = await read();
      const repeatsOf = () => page.evaluate(() => {
        const n = window.comfyAPI.app.app.graph.nodes.find((x) => x.type === "DatasetSubsetWeights");
        return n.widgets.find((w) => w.name === "repeats")?.value ?? null;
      });
      const repeatsBefore = await repeatsOf();
      await shot("weights_editor_before", editor);
      const name = cfg.subsets[0];
      const input = editor.locator(`input.lw-weight[data-subset="${name}"]`);
      await input.fill("3");
      await input.dispatchEvent("input");
      await page.waitForFunction(({ name, was }) => {
        const td = document.querySelector(`.lw-weights-editor td.lw-repeats[data-subset="${name}"]`);
        return td && td.textContent !== was;
      }, { name, was: before[name] }, { timeout: 20000 });
      const after = await read();
      const weights = await page.evaluate(() => {
        const app = window.comfyAPI.app.app;
        const n = app.graph.nodes.find((x) => x.type === "DatasetSubsetWeights");
        return n.widgets.find((w) => w.name === "weights").value;
      });
      const saved = await page.evaluate(() => {
        const app = window.comfyAPI.app.app;
        const n = app.graph.nodes.find((x) => x.type === "DatasetSubsetWeights");
        return n.serialize().widgets_values;
      });
      const summary = await editor.locator("[data-role=summary]").textContent();
      await page.waitForTimeout(300);
      await shot("weights_editor_after", editor);
      return { before, after, weights, widgets_values: saved, summary, repeats_before: repeatsBefore,
        repeats_after: await repeatsOf() };
    });
  }

  await step("library_panel_before", async () => {
    await focusNode("LinkModelLibrary", "lora_workbench_library_status");
    const panel = page.locator(".lw-library-status");
    await panel.waitFor({ state: "visible", timeout: 30000 });
    return { text: await panel.textContent() };
  });

  if (cfg.train && hasDataset) {
    await step("train", async () => {
      const panel = page.locator(".lw-train-panel");
      // The progress bar's previews arrive as binary websocket frames with the node's id.
      await page.evaluate(() => {
        window.__lwPreviews = [];
        window.comfyAPI.api.api.addEventListener("b_preview_with_metadata", ({ detail }) => {
          window.__lwPreviews.push({ node: String(detail.displayNodeId ?? detail.nodeId), size: detail.blob.size,
            type: detail.blob.type, state: document.querySelector(".lw-train-panel")?.dataset.state });
        });
      });
      const trainId = await page.evaluate(() =>
        String(window.comfyAPI.app.app.graph.nodes.find((n) => n.type === "KohyaLoRATrain").id));
      // Queue only the training and library nodes (and what they need): an example workflow's sampler
      // part would spend minutes on the CPU.
      await page.evaluate(async () => {
        const app = window.comfyAPI.app.app;
        const ids = app.graph.nodes.filter((n) => ["KohyaLoRATrain", "LinkModelLibrary"].includes(n.type))
          .map((n) => String(n.id));
        await app.queuePrompt(0, 1, ids);
      });
      await focusNode("KohyaLoRATrain", "lora_workbench_training");
      await page.waitForFunction(() => ["running", "finished", "failed", "cancelled"]
        .includes(document.querySelector(".lw-train-panel")?.dataset.state), null, { timeout: cfg.train_timeout_s * 1000 });
      const pointsSeen = [];
      let midShot = false, previewShot = false, tabShot = false, tabSeen = null;
      const deadline = Date.now() + cfg.train_timeout_s * 1000;
      let state = "";
      while (Date.now() < deadline) {
        state = await page.evaluate(() => document.querySelector(".lw-train-panel")?.dataset.state);
        const pts = Number(await page.evaluate(() => document.querySelector(".lw-train-panel canvas")?.dataset.points || 0));
        if (!pointsSeen.length || pointsSeen[pointsSeen.length - 1] !== pts) pointsSeen.push(pts);
        if (state === "running" && pts >= 2 && !midShot) {
          await shot("train_panel_running", panel);
          midShot = true;
        }
        const previews = await page.evaluate(() => window.__lwPreviews.length);
        if (previews && state === "running" && !previewShot) {
          // The node with the preview drawn under its panel, the way a sampler shows its latents.
          await focusNode("KohyaLoRATrain", "lora_workbench_training");
          const box = await panel.boundingBox();
          const view = page.viewportSize();
          if (box) {
            const y = Math.max(0, box.y - 30);
            const clip = { x: Math.max(0, box.x - 30), y, width: Math.min(box.width + 60, view.width),
              height: Math.min(box.height + 480, view.height - y) };
            const file = path.join(out, "train_node_preview.png");
            await page.screenshot({ path: file, clip });
            result.screenshots.push(file);
            previewShot = true;
          }
        }
        if (state === "running" && pts >= 3 && !tabShot) {
          await showTrainingTab();
          await waitTab((t) => t.state === "running" && t.points >= 1, 20000, "the running run");
          await shot("training_tab_running", page.locator(".lw-tab"));
          tabSeen = await tabState();
          await hideTrainingTab();
          tabShot = true;
        }
        if (["finished", "failed", "cancelled"].includes(state)) break;
        await page.waitForTimeout(500);
      }
      await page.waitForTimeout(500);
      const final = await page.evaluate(() => {
        const p = document.querySelector(".lw-train-panel");
        return { state: p?.dataset.state, points: Number(p?.querySelector("canvas")?.dataset.points || 0),
          text: p?.textContent, samples: p?.querySelectorAll(".lw-samples img").length ?? 0 };
      });
      await shot("train_panel_done", panel);
      const statusRoute = await page.evaluate(async () => (await fetch("/api/lora_workbench/train/status")).json());
      await showTrainingTab();
      const tabDone = await waitTab((t) => t.state === "finished" && t.files.includes("lora"), 30000, "the finished run");
      await shot("training_tab_done", page.locator(".lw-tab"));
      await hideTrainingTab();
      const previews = await page.evaluate(() => window.__lwPreviews);
      return { points_seen: pointsSeen, final, route_state: statusRoute.state, route_points: statusRoute.losses?.length,
        run_dir: statusRoute.log_path ? statusRoute.log_path.replace(/[\\/][^\\/]*$/, "") : "",
        train_node_id: trainId, previews, tab_running: tabSeen, tab_done: tabDone };
    });
  } else {
    // No dataset node yet: feed the panel a status as the websocket would, to see it draw.
    await step("train_panel_from_event", async () => {
      await focusNode("KohyaLoRATrain", "lora_workbench_training");
      const panel = page.locator(".lw-train-panel");
      await panel.waitFor({ state: "visible", timeout: 30000 });
      await page.evaluate(() => {
        const api = window.comfyAPI.api.api;
        const losses = Array.from({ length: 40 }, (_, i) => [i + 1, 0.2 + 0.1 * Math.exp(-i / 10) + 0.02 * Math.sin(i)]);
        api.dispatchEvent(new CustomEvent("lora_workbench.train", { detail: {
          run_id: "demo", state: "running", step: 40, total: 80, epoch: 1, epochs: 2, loss: 0.21, it_per_s: 1.6,
          eta_s: 25, elapsed_s: 25, losses, samples: [], node_id: null, text: "epoch 1/2 · step 40/80" } }));
      });
      await page.waitForTimeout(300);
      const points = Number(await page.evaluate(() => document.querySelector(".lw-train-panel canvas")?.dataset.points || 0));
      await shot("train_panel_event", panel);
      return { points };
    });
  }

  await step("library_panel", async () => {
    await focusNode("LinkModelLibrary", "lora_workbench_library_status");
    const panel = page.locator(".lw-library-status");
    if (!(cfg.train && hasDataset)) {
      // Run only the library node (an output node) so the panel has a report and a watcher.
      await page.evaluate(async () => {
        const app = window.comfyAPI.app.app;
        const n = app.graph.nodes.find((x) => x.type === "LinkModelLibrary");
        await app.queuePrompt(0, 1, [String(n.id)]);
      });
    }
    await page.waitForFunction(() => document.querySelector(".lw-library-status [data-role=report] .lw-chips"),
      null, { timeout: 60000 });
    await page.waitForTimeout(800);
    const text = await panel.textContent();
    const watching = await panel.getAttribute("data-watching");
    await shot("library_status", panel);
    return { text, watching };
  });

  await step("overview", async () => {
    await page.evaluate(() => {
      const app = window.comfyAPI.app.app;
      const ds = app.canvas.ds;
      ds.scale = 0.6;
      ds.offset[0] = 20;
      ds.offset[1] = 20;
      app.canvas.setDirty(true, true);
    });
    await page.waitForTimeout(500);
    await shot("overview");
    return {};
  });
  if (cfg.legacy_workflow) {
    await step("migration", async () => {
      // A workflow saved with the first layout (51 widget values on KohyaLoRATrain) loads into the short
      // node + option nodes, and the prompt it queues carries the old values.
      const wf = JSON.parse(fs.readFileSync(cfg.legacy_workflow, "utf8"));
      const seen = await page.evaluate(async (wf) => {
        const app = window.comfyAPI.app.app;
        await app.loadGraphData(wf);
        const tr = app.graph.nodes.find((n) => n.type === "KohyaLoRATrain");
        const value = (node, name) => node.widgets.find((w) => w.name === name)?.value;
        const opts = app.graph.nodes.filter((n) => n.type.endsWith("Options"));
        const { output } = await app.graphToPrompt();
        const ds = app.canvas.ds;
        ds.scale = 0.75;
        ds.offset[0] = -Math.min(...opts.map((n) => n.pos[0])) + 30;
        ds.offset[1] = -tr.pos[1] + 40;
        app.canvas.setDirty(true, true);
        return {
          trainer: { epochs: value(tr, "epochs"), network_dim: value(tr, "network_dim"), values: tr.serialize().widgets_values.length,
            options_linked: tr.inputs.find((i) => i.name === "options")?.link != null },
          option_nodes: Object.fromEntries(opts.map((n) => [n.type, Object.fromEntries(n.widgets.map((w) => [w.name, w.value]))])),
          prompt: Object.fromEntries(Object.entries(output).filter(([, e]) => e.class_type.startsWith("Kohya"))),
        };
      }, wf);
      await page.waitForTimeout(600);
      await shot("migrated_first_layout");
      return seen;
    });
  }

  if (cfg.api_runs && hasDataset) {
    await step("api_run", async () => {
      // No training node on the canvas: the run is queued through the queue API by "someone else".
      await page.evaluate(() => window.comfyAPI.app.app.graph.clear());
      await showTrainingTab();
      const before = (await tabState()).runs.map((r) => r.dir);
      const prompt = await apiPrompt({ seed: 777, max_train_steps: 4 });
      const queued = await page.evaluate(async (prompt) => (await fetch("/api/prompt", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt, client_id: "lw-api-client" }) })).json(), prompt);
      if (!queued.prompt_id) throw new Error(`the prompt was refused: ${JSON.stringify(queued)}`);
      const isNew = (t) => t.selected && !before.includes(t.selected);
      const running = await waitTab((t) => isNew(t) && t.state === "running" && t.points >= 1,
        cfg.train_timeout_s * 1000, "the API run training");
      await shot("training_tab_api_running", page.locator(".lw-tab"));
      // Finished, and read back from its folder (the loss curve is written last).
      const done = await waitTab((t) => isNew(t) && t.state === "finished" && t.files.includes("lora")
        && t.files.includes("loss") && t.runs.find((r) => r.dir === t.selected)?.state === "finished",
        cfg.train_timeout_s * 1000, "the API run finished");
      await page.waitForTimeout(500);
      await shot("training_tab_api_done", page.locator(".lw-tab"));
      const nodesOnCanvas = await page.evaluate(() => window.comfyAPI.app.app.graph.nodes.length);
      return { prompt_id: queued.prompt_id, running, done, nodes_on_canvas: nodesOnCanvas };
    });

    await step("api_run_cancel", async () => {
      const before = (await tabState()).runs.map((r) => r.dir);
      const prompt = await apiPrompt({ seed: 778, max_train_steps: 50 });
      const queued = await page.evaluate(async (prompt) => (await fetch("/api/prompt", { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt, client_id: "lw-api-client" }) })).json(), prompt);
      const isNew = (t) => t.selected && !before.includes(t.selected);
      await waitTab((t) => isNew(t) && t.cancel_enabled, cfg.train_timeout_s * 1000, "a cancellable API run");
      const at = await tabState();
      await page.locator(".lw-tab-detail .lw-head button[data-role=cancel]").click();
      const t0 = Date.now();
      const after = await waitTab((t) => isNew(t) && ["cancelled", "failed", "stopped"].includes(t.state), 60000,
        "the cancelled run");
      const seconds = (Date.now() - t0) / 1000;
      await page.waitForTimeout(800);
      await shot("training_tab_cancelled", page.locator(".lw-tab"));
      const history = await page.evaluate(async (id) => (await (await fetch(`/api/history/${id}`)).json())[id]?.status, queued.prompt_id);
      return { at, after, seconds, prompt_id: queued.prompt_id, history };
    });

    await step("reload", async () => {
      // Recent runs come back from the run folders after a reload, not from the page's memory.
      await page.reload({ waitUntil: "domcontentloaded" });
      await page.waitForFunction(() => window.comfyAPI?.app?.app?.extensionManager
        && window.LiteGraph?.registered_node_types?.KohyaLoRATrain, null, { timeout: 60000 });
      await page.waitForTimeout(1000);
      await showTrainingTab();
      const st = await waitTab((t) => t.runs.length >= 3 && t.log_lines > 0, 30000, "the runs after a reload");
      await page.waitForTimeout(500);
      await shot("training_tab_after_reload", page.locator(".lw-tab"));
      return st;
    });
  }
} finally {
  save();
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
log("done");
