// LoRA Workbench frontend entry: adds the panels to the pack's nodes, the Training tab to the bottom
// panel and the pack's paths to the settings dialog, and routes the core's websocket events to them.
// Plain ES modules served from the pack's web/ folder; nothing loads from the internet.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { attachLibraryStatus, NODE_TYPE as LIBRARY_NODE, onLibraryEvent } from "./library_status.js";
import { attachTrainPanel, NODE_TYPE as TRAIN_NODE, onTrainEvent } from "./train_panel.js";
import { attachWeightsEditor, NODE_TYPE as WEIGHTS_NODE, onDatasetEvent } from "./weights_editor.js";
import { migrateWorkflow } from "./train_migration.js";
import { dialogSettings } from "./settings_dialog.js";
import { onTrainingEvent, trainingPanelTab } from "./training_tab.js";

// The event names of lora_workbench/events.py.
const EVENTS = { train: "lora_workbench.train", library: "lora_workbench.library", dataset: "lora_workbench.dataset" };

const ATTACH = {
  [TRAIN_NODE]: attachTrainPanel,
  [WEIGHTS_NODE]: attachWeightsEditor,
  [LIBRARY_NODE]: attachLibraryStatus,
};

// The settings dialog's rows come from the server's list of editable settings (one source).
const settings = await dialogSettings();

app.registerExtension({
  name: "lora_workbench.panels",
  settings,
  bottomPanelTabs: [trainingPanelTab],

  setup() {
    api.addEventListener(EVENTS.train, (e) => { onTrainEvent(e.detail); onTrainingEvent(e.detail); });
    api.addEventListener(EVENTS.library, () => onLibraryEvent());
    api.addEventListener(EVENTS.dataset, () => onDatasetEvent());
    // After a reconnect (ComfyUI restarted) the panels may show stale numbers: refresh them.
    api.addEventListener("reconnected", () => { onLibraryEvent(); onDatasetEvent(); });
  },

  // Workflows saved with the first KohyaLoRATrain layout: move their values onto the short node and
  // option nodes before the frontend assigns widget values by position.
  beforeConfigureGraph(graphData) {
    try {
      for (const note of migrateWorkflow(graphData)) console.info(`[lora_workbench] ${note}`);
    } catch (err) {
      console.error("[lora_workbench] could not migrate this workflow's KohyaLoRATrain:", err);
    }
  },

  nodeCreated(node) {
    const attach = ATTACH[node.comfyClass ?? node.type];
    if (!attach) return;
    try {
      attach(node);
    } catch (err) {
      console.error(`[lora_workbench] could not add the panel to ${node.type}:`, err);
    }
  },
});
