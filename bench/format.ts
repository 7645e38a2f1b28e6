/** Number formatting shared by the terminal table, the Markdown report and the chart. */
export function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes >= 1e8 ? 0 : 1)} MB`;
}

export function seconds(s: number): string {
  return s >= 100 ? `${s.toFixed(0)} s` : s >= 10 ? `${s.toFixed(1)} s` : `${s.toFixed(2)} s`;
}

export function rate(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1);
}

export function ratio(x: number): string {
  return `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}×`;
}

export function percent(x: number): string {
  return `${(x * 100).toFixed(x < 0.1 ? 2 : 1)}%`;
}

export function cpu(s: number | null): string {
  return s === null ? '–' : `${s.toFixed(0)}`;
}
