// The loss curve of the training panel, drawn on a <canvas> by hand (no chart library, no CDN):
// raw avr_loss per step, a smoothed line over it, axes with the step and loss range.

const RAW = "rgba(120, 170, 255, 0.45)";
const SMOOTH = "#4fa3ff";
const GRID = "rgba(255, 255, 255, 0.08)";
const TEXT = "rgba(220, 220, 220, 0.75)";

/** Exponential moving average, debiased like TensorBoard's, for display only. */
export function smooth(values, weight) {
  const out = [];
  let last = 0, n = 0;
  for (const v of values) {
    if (v === null || !isFinite(v)) { out.push(null); continue; }
    n += 1;
    last = last * weight + (1 - weight) * v;
    out.push(last / (1 - Math.pow(weight, n)));
  }
  return out;
}

function niceLabel(v, step) {
  if (!isFinite(v)) return "";
  const decimals = Math.max(0, Math.min(6, Math.ceil(-Math.log10(Math.abs(step) || 1))));
  return v.toFixed(decimals);
}

/**
 * Draw `losses` ([[step, loss], ...]) on `canvas`; `total` fixes the x range when known.
 * Sets canvas.dataset.points to the number of finite points drawn (the browser test reads it).
 */
export function drawLossChart(canvas, losses, { total = 0, title = "" } = {}) {
  const dpr = window.devicePixelRatio || 1;
  const cssW = Math.max(60, canvas.clientWidth || 300);
  const cssH = Math.max(40, canvas.clientHeight || 150);
  if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  ctx.font = "10px system-ui, sans-serif";

  const pts = (losses || []).filter((p) => Array.isArray(p) && p[1] !== null && isFinite(p[1]));
  canvas.dataset.points = String(pts.length);
  const pad = { l: 40, r: 8, t: title ? 14 : 6, b: 16 };
  const w = cssW - pad.l - pad.r, h = cssH - pad.t - pad.b;
  if (title) {
    ctx.fillStyle = TEXT;
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(title, pad.l, 1);
  }
  if (!pts.length) {
    ctx.fillStyle = TEXT;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText("no loss values yet", pad.l + w / 2, pad.t + h / 2);
    return;
  }

  const steps = pts.map((p) => p[0]);
  const vals = pts.map((p) => p[1]);
  const xMin = Math.min(0, steps[0]);
  const xMax = Math.max(total || 0, steps[steps.length - 1], xMin + 1);
  let yMin = Math.min(...vals), yMax = Math.max(...vals);
  if (yMax - yMin < 1e-9) { yMin -= Math.abs(yMin) * 0.1 + 1e-3; yMax += Math.abs(yMax) * 0.1 + 1e-3; }
  const margin = (yMax - yMin) * 0.06;
  yMin -= margin; yMax += margin;
  const X = (s) => pad.l + ((s - xMin) / (xMax - xMin)) * w;
  const Y = (v) => pad.t + (1 - (v - yMin) / (yMax - yMin)) * h;

  // grid and labels
  ctx.strokeStyle = GRID;
  ctx.lineWidth = 1;
  ctx.fillStyle = TEXT;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const v = yMin + ((yMax - yMin) * i) / 4;
    const y = Math.round(Y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(pad.l + w, y); ctx.stroke();
    ctx.fillText(niceLabel(v, (yMax - yMin) / 4), pad.l - 4, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillText(String(Math.round(xMin)), X(xMin) + 6, pad.t + h + 3);
  ctx.fillText(`step ${Math.round(xMax)}`, pad.l + w - 22, pad.t + h + 3);

  const line = (ys, color, width) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.lineJoin = "round";
    ctx.beginPath();
    let started = false;
    ys.forEach((v, i) => {
      if (v === null) return;
      const x = X(steps[i]), y = Y(v);
      if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
    });
    ctx.stroke();
  };
  if (pts.length === 1) {
    ctx.fillStyle = SMOOTH;
    ctx.beginPath(); ctx.arc(X(steps[0]), Y(vals[0]), 3, 0, Math.PI * 2); ctx.fill();
    return;
  }
  line(vals, RAW, 1);
  const weight = Math.min(0.9, Math.max(0, 1 - 6 / pts.length));
  line(smooth(vals, weight), SMOOTH, 2);
  const last = pts[pts.length - 1];
  ctx.fillStyle = SMOOTH;
  ctx.beginPath(); ctx.arc(X(last[0]), Y(last[1]), 2.5, 0, Math.PI * 2); ctx.fill();
}
