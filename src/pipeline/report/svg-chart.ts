/** Inline SVG charts for report.html: no scripts, no fonts or images from the network. */

export interface BarSeries {
  name: string;
  /** One value per category; null = no bar (with `notes` saying why, e.g. OOM). */
  values: (number | null)[];
  errors?: (number | null)[];
  notes?: (string | null)[];
}

export interface BarChartOptions {
  id: string;
  title: string;
  yLabel: string;
  categories: string[];
  series: BarSeries[];
  width?: number;
  height?: number;
  digits?: number;
}

export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[char]!);
}

/** A "nice" upper bound for an axis (1, 2, 2.5, 5 × 10^k) at or above `max`. */
export function niceMax(max: number): number {
  if (!(max > 0) || !Number.isFinite(max)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/** A "nice" step (1, 2, 2.5, 5 × 10^k) at or above `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= raw * (1 - 1e-12)) return step * power;
  return 10 * power;
}

/** The value axis of a chart: from `min` to `max` in ticks of `step`; `zoomed` when it does not start at 0. */
export interface AxisRange {
  min: number;
  max: number;
  step: number;
  zoomed: boolean;
}

/** Values closer together than this share of the largest get an axis that does not start at 0 (marked as such). */
export const ZOOM_SPREAD = 0.25;

/**
 * An axis scaled to the data: from 0 when the values are spread out (or any is ≤ 0), zoomed in to the data when
 * they are close (every value within ZOOM_SPREAD of the largest), so four precisions a few tenths of a percent
 * apart do not look identical. `low`/`high`: the smallest and largest value drawn (error bars included).
 */
export function axisRange(low: number, high: number): AxisRange {
  if (!Number.isFinite(low) || !Number.isFinite(high) || !(high > 0)) return { min: 0, max: 1, step: 0.2, zoomed: false };
  if (low > 0 && high - low < ZOOM_SPREAD * high) {
    const span = high - low > 0 ? high - low : high * 0.01;
    const step = niceStep(span / 4);
    const min = Math.floor((low - step / 2) / step) * step;
    if (min > 0) return { min, max: Math.ceil(high / step - 1e-9) * step, step, zoomed: true };
  }
  const step = niceStep(high / 5);
  return { min: 0, max: Math.ceil(high / step - 1e-9) * step, step, zoomed: false };
}

/** Decimals that tell the ticks of `step` apart (0.25 → 2, 0.005 → 3, 20 → 0). */
function tickDecimals(step: number): number {
  for (let decimals = 0; decimals < 12; decimals += 1) if (Math.abs(Number(step.toFixed(decimals)) - step) < step * 1e-6) return decimals;
  return 12;
}

function formatTick(value: number, step: number): string {
  if (value === 0) return '0';
  if (Math.abs(value) >= 1000 && step >= 100) return `${(value / 1000).toFixed(value % 1000 === 0 ? 0 : 1)}k`;
  return value.toFixed(tickDecimals(step));
}

/** A category label; a newline in it starts a second line. */
function categoryText(category: string, x: number): string {
  const [first, ...rest] = category.split('\n');
  return [escapeXml(first ?? ''), ...rest.map((line) => `<tspan x="${x}" dy="14">${escapeXml(line)}</tspan>`)].join('');
}

/** The number of bars a chart would draw (values, and notes where there is no value). */
export function barCount(series: readonly BarSeries[]): number {
  return series.reduce(
    (sum, each) => sum + each.values.filter((value, index) => (value !== null && Number.isFinite(value)) || Boolean(each.notes?.[index])).length,
    0,
  );
}

/** Smallest height a bar is drawn with, so that a value at the axis minimum (a pass@1 of 0) is still a bar. */
const MIN_BAR_PX = 2;

/**
 * A grouped bar chart: categories along x, one coloured bar per series, optional error bars and notes, each bar's
 * value written above it (where there is room). The value axis is scaled to the data (axisRange); an axis that
 * does not start at 0 has a break mark on it and says so under the title.
 */
export function groupedBarChart(options: BarChartOptions): string {
  const width = options.width ?? 760;
  const height = options.height ?? 340;
  const digits = options.digits ?? 3;
  const margin = { top: 48, right: 20, bottom: 70, left: 70 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  let low = Number.POSITIVE_INFINITY;
  let high = 0;
  for (const series of options.series) {
    series.values.forEach((value, index) => {
      if (value === null || !Number.isFinite(value)) return;
      const error = series.errors?.[index] ?? 0;
      high = Math.max(high, value + error);
      low = Math.min(low, value - error, value);
    });
  }
  const axis = axisRange(low, high);
  const clamp = (value: number): number => Math.min(axis.max, Math.max(axis.min, value));
  const y = (value: number): number => margin.top + plotHeight - ((clamp(value) - axis.min) / (axis.max - axis.min)) * plotHeight;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" id="${escapeXml(options.id)}" class="chart" role="img" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
  );
  const bottomTick = formatTick(axis.min, axis.step);
  if (axis.zoomed) {
    parts.push(
      `<text class="axis-note" x="${width / 2}" y="38" text-anchor="middle" font-size="11" font-style="italic" fill="#b03a2e">${escapeXml(`axis starts at ${bottomTick}, not 0: bar heights exaggerate the differences`)}</text>`,
    );
  }
  const ticks = Math.round((axis.max - axis.min) / axis.step);
  for (let i = 0; i <= ticks; i += 1) {
    const value = axis.min + i * axis.step;
    const yy = y(value);
    const bottom = i === 0 && axis.zoomed;
    parts.push(
      `<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${yy}" y2="${yy}" stroke="#dddddd"/>`,
      `<text${bottom ? ' class="axis-min" fill="#b03a2e" font-weight="bold"' : ''} x="${margin.left - 6}" y="${yy + 4}" text-anchor="end">${formatTick(value, axis.step)}</text>`,
    );
  }
  parts.push(
    `<text transform="translate(16 ${margin.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
    `<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${margin.top + plotHeight}" stroke="#333333"/>`,
    `<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${margin.top + plotHeight}" y2="${margin.top + plotHeight}" stroke="#333333"/>`,
  );
  if (axis.zoomed) {
    // A break mark on the value axis just above its (non-zero) minimum.
    const by = margin.top + plotHeight - 10;
    parts.push(
      `<g class="axis-break" stroke="#b03a2e" stroke-width="2"><line x1="${margin.left - 6}" x2="${margin.left + 6}" y1="${by + 3}" y2="${by - 1}"/><line x1="${margin.left - 6}" x2="${margin.left + 6}" y1="${by + 8}" y2="${by + 4}"/></g>`,
    );
  }
  const groups = Math.max(options.categories.length, 1);
  const groupWidth = plotWidth / groups;
  const nSeries = Math.max(options.series.length, 1);
  const barWidth = Math.max(2, (groupWidth * 0.8) / nSeries);
  const labelBars = barWidth >= 22 && barCount(options.series) <= 48;
  const baseline = margin.top + plotHeight;
  options.categories.forEach((category, c) => {
    const groupX = margin.left + c * groupWidth + groupWidth * 0.1;
    parts.push(
      `<text class="category" x="${margin.left + c * groupWidth + groupWidth / 2}" y="${margin.top + plotHeight + 18}" text-anchor="middle">${categoryText(category, margin.left + c * groupWidth + groupWidth / 2)}</text>`,
    );
    options.series.forEach((series, s) => {
      const x = groupX + s * barWidth;
      const value = series.values[c] ?? null;
      const color = PALETTE[s % PALETTE.length]!;
      if (value === null || !Number.isFinite(value)) {
        const note = series.notes?.[c];
        if (note) {
          parts.push(
            `<text class="note" x="${x + barWidth / 2}" y="${margin.top + plotHeight - 6}" text-anchor="middle" font-size="10" fill="#c0392b" transform="rotate(-90 ${x + barWidth / 2} ${margin.top + plotHeight - 6})" dx="24">${escapeXml(note)}</text>`,
          );
        }
        return;
      }
      const yy = Math.min(y(value), baseline - MIN_BAR_PX);
      parts.push(
        `<rect class="bar" x="${x.toFixed(2)}" y="${yy.toFixed(2)}" width="${(barWidth - 1).toFixed(2)}" height="${(baseline - yy).toFixed(2)}" fill="${color}"><title>${escapeXml(`${series.name}, ${category.replace(/\n/g, ' ')}: ${value.toFixed(digits)}`)}</title></rect>`,
      );
      const error = series.errors?.[c];
      const cx = x + (barWidth - 1) / 2;
      let labelY = yy - 4;
      if (error !== null && error !== undefined && error > 0) {
        parts.push(
          `<line x1="${cx}" x2="${cx}" y1="${y(value + error)}" y2="${y(value - error)}" stroke="#222222"/>`,
          `<line x1="${cx - 3}" x2="${cx + 3}" y1="${y(value + error)}" y2="${y(value + error)}" stroke="#222222"/>`,
        );
        labelY = Math.min(labelY, y(value + error) - 4);
      }
      if (labelBars) {
        parts.push(
          `<text class="value" x="${cx.toFixed(2)}" y="${Math.max(margin.top - 2, labelY).toFixed(2)}" text-anchor="middle" font-size="10" fill="#333333">${escapeXml(value.toFixed(digits))}</text>`,
        );
      }
    });
  });
  // Legend along the bottom.
  let legendX = margin.left;
  const legendY = height - 22;
  options.series.forEach((series, s) => {
    parts.push(
      `<rect x="${legendX}" y="${legendY - 10}" width="12" height="12" fill="${PALETTE[s % PALETTE.length]}"/>`,
      `<text x="${legendX + 16}" y="${legendY}">${escapeXml(series.name)}</text>`,
    );
    legendX += 28 + series.name.length * 7;
  });
  parts.push('</svg>');
  return parts.join('\n');
}
