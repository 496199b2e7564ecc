// Grouped bar charts as plain SVG strings (no browser, no dependencies): one
// chart per op, chunk sizes along x, one bar per store, throughput on a log
// scale. Every bar carries a <title> with its exact figures.
import { sizeLabel, timeLabel } from './report.mjs'

const COLORS = {
  'coldpage-swap': '#2f6db5',
  'coldpage-file': '#e4572e',
  'fs-files': '#a6a6a6',
  'fs-fd': '#5f5f5f',
  lmdb: '#8e6bbf',
  heap: '#d4b62c',
}
const escape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function rateLabel(gibPerS) {
  if (gibPerS >= 1) return `${gibPerS >= 100 ? gibPerS.toFixed(0) : gibPerS.toPrecision(3)} GiB/s`
  const mib = gibPerS * 1024
  return `${mib >= 100 ? mib.toFixed(0) : mib.toPrecision(3)} MiB/s`
}

/**
 * @param {object} chart
 * @param {string} chart.title
 * @param {number[]} chart.sizes
 * @param {{ id: string, label: string }[]} chart.series
 * @param {(size: number, id: string) => { gibPerS: number, medianMs: number } | undefined} chart.value
 */
export function barChart({ title, subtitle, sizes, series: all, value }) {
  const series = all.filter((c) => sizes.some((s) => value(s, c.id) !== undefined))
  const W = 780
  const H = 340
  const m = { left: 64, right: 12, top: 58, bottom: 40 }
  const plotW = W - m.left - m.right
  const plotH = H - m.top - m.bottom
  const values = sizes.flatMap((s) => series.map((c) => value(s, c.id)?.gibPerS)).filter((v) => Number.isFinite(v) && v > 0)
  const lo = Math.floor(Math.log10(Math.min(...values)))
  const hi = Math.ceil(Math.log10(Math.max(...values)))
  const span = Math.max(1, hi - lo)
  const y = (v) => m.top + plotH - ((Math.log10(v) - lo) / span) * plotH
  const groupW = plotW / sizes.length
  const barW = (groupW * 0.8) / series.length
  const out = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="11">`)
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`)
  out.push(`<text x="${m.left}" y="18" font-size="14" font-weight="600" fill="#222">${escape(title)}</text>`)
  if (subtitle) out.push(`<text x="${m.left}" y="34" fill="#555">${escape(subtitle)}</text>`)
  // Legend, one row above the plot.
  let lx = m.left
  for (const c of series) {
    out.push(`<rect x="${lx}" y="42" width="10" height="10" fill="${COLORS[c.id] ?? '#888'}"/>`)
    out.push(`<text x="${lx + 14}" y="51" fill="#333">${escape(c.label)}</text>`)
    lx += 24 + c.label.length * 6.2
  }
  // Decade grid lines and labels.
  for (let e = lo; e <= lo + span; e++) {
    const v = 10 ** e
    const yy = y(v).toFixed(1)
    out.push(`<line x1="${m.left}" x2="${W - m.right}" y1="${yy}" y2="${yy}" stroke="#e3e3e3"/>`)
    out.push(`<text x="${m.left - 6}" y="${(Number(yy) + 4).toFixed(1)}" text-anchor="end" fill="#555">${escape(`${Number(v.toPrecision(1))} GiB/s`)}</text>`)
  }
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + plotH}" stroke="#999"/>`)
  out.push(`<line x1="${m.left}" x2="${W - m.right}" y1="${m.top + plotH}" y2="${m.top + plotH}" stroke="#999"/>`)
  sizes.forEach((size, i) => {
    const gx = m.left + i * groupW + groupW * 0.1
    out.push(`<text x="${(m.left + (i + 0.5) * groupW).toFixed(1)}" y="${m.top + plotH + 16}" text-anchor="middle" fill="#333">${escape(sizeLabel(size))}</text>`)
    series.forEach((c, j) => {
      const r = value(size, c.id)
      if (r === undefined || !(r.gibPerS > 0)) return
      const top = y(r.gibPerS)
      const x = gx + j * barW
      const h = m.top + plotH - top
      out.push(
        `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${Math.max(0.5, h).toFixed(1)}" fill="${COLORS[c.id] ?? '#888'}">` +
          `<title>${escape(`${c.label}, ${sizeLabel(size)}: ${timeLabel(r.medianMs)} median, ${rateLabel(r.gibPerS)}`)}</title></rect>`,
      )
    })
  })
  out.push(`<text x="${W / 2}" y="${H - 6}" text-anchor="middle" fill="#555">chunk size (higher bars are faster)</text>`)
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
