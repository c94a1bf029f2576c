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

function formatTick(value: number): string {
  if (value === 0) return '0';
  if (Math.abs(value) >= 1000) return `${(value / 1000).toFixed(value % 1000 === 0 ? 0 : 1)}k`;
  return Number(value.toPrecision(3)).toString();
}

/** A grouped bar chart: categories along x, one coloured bar per series, optional error bars and notes. */
export function groupedBarChart(options: BarChartOptions): string {
  const width = options.width ?? 760;
  const height = options.height ?? 340;
  const digits = options.digits ?? 3;
  const margin = { top: 40, right: 20, bottom: 70, left: 70 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  let max = 0;
  for (const series of options.series) {
    series.values.forEach((value, index) => {
      if (value === null || !Number.isFinite(value)) return;
      max = Math.max(max, value + (series.errors?.[index] ?? 0));
    });
  }
  const top = niceMax(max);
  const y = (value: number): number => margin.top + plotHeight - (value / top) * plotHeight;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" id="${escapeXml(options.id)}" class="chart" role="img" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
  );
  for (let i = 0; i <= 5; i += 1) {
    const value = (top * i) / 5;
    const yy = y(value);
    parts.push(
      `<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${yy}" y2="${yy}" stroke="#dddddd"/>`,
      `<text x="${margin.left - 6}" y="${yy + 4}" text-anchor="end">${formatTick(value)}</text>`,
    );
  }
  parts.push(
    `<text transform="translate(16 ${margin.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`,
    `<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${margin.top + plotHeight}" stroke="#333333"/>`,
    `<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${margin.top + plotHeight}" y2="${margin.top + plotHeight}" stroke="#333333"/>`,
  );
  const groups = Math.max(options.categories.length, 1);
  const groupWidth = plotWidth / groups;
  const nSeries = Math.max(options.series.length, 1);
  const barWidth = Math.max(2, (groupWidth * 0.8) / nSeries);
  options.categories.forEach((category, c) => {
    const groupX = margin.left + c * groupWidth + groupWidth * 0.1;
    parts.push(
      `<text x="${margin.left + c * groupWidth + groupWidth / 2}" y="${margin.top + plotHeight + 18}" text-anchor="middle">${escapeXml(category)}</text>`,
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
      const yy = y(value);
      parts.push(
        `<rect class="bar" x="${x.toFixed(2)}" y="${yy.toFixed(2)}" width="${(barWidth - 1).toFixed(2)}" height="${(margin.top + plotHeight - yy).toFixed(2)}" fill="${color}"><title>${escapeXml(`${series.name}, ${category}: ${value.toFixed(digits)}`)}</title></rect>`,
      );
      const error = series.errors?.[c];
      if (error !== null && error !== undefined && error > 0) {
        const cx = x + (barWidth - 1) / 2;
        parts.push(
          `<line x1="${cx}" x2="${cx}" y1="${y(value + error)}" y2="${y(Math.max(0, value - error))}" stroke="#222222"/>`,
          `<line x1="${cx - 3}" x2="${cx + 3}" y1="${y(value + error)}" y2="${y(value + error)}" stroke="#222222"/>`,
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
