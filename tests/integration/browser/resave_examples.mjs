// Saves each example workflow from the real frontend: loads it into ComfyUI's graph and writes what
// graph.serialize() gives, so the JSON carries every current widget, input and output of each node.
// Called by scripts/resave_examples.py:
//   node resave_examples.mjs URL OUT_DIR CHROMIUM WORKFLOW.json ...
// Prints {"saved": {name: node count}, "errors": {name: [console errors while loading it]}}.
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const [url, outDir, executablePath, ...files] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
const errors = [];
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
page.on("pageerror", (e) => errors.push(String(e)));
await page.goto(url, { waitUntil: "domcontentloaded" });
await page.waitForFunction(
  () => window.comfyAPI?.app?.app?.graph && window.LiteGraph?.registered_node_types?.KohyaLoRATrain,
  null, { timeout: 180000 });
await page.waitForTimeout(2000);
errors.splice(0); // the page's own start-up (offline fetches), not the workflows'
const result = { saved: {}, errors: {} };
for (const file of files) {
  const name = path.basename(file);
  const workflow = JSON.parse(fs.readFileSync(file, "utf8"));
  await page.evaluate(async (wf) => { await window.comfyAPI.app.app.loadGraphData(wf); }, workflow);
  await page.waitForTimeout(1500);
  const saved = await page.evaluate(() => window.comfyAPI.app.app.graph.serialize());
  fs.writeFileSync(path.join(outDir, name), JSON.stringify(saved, null, 2) + "\n");
  result.saved[name] = saved.nodes.length;
  result.errors[name] = errors.splice(0);
}
console.log(JSON.stringify(result));
await browser.close();
