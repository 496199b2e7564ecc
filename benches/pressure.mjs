#!/usr/bin/env node
// The memory-pressure run (needs root): the merge workload behind DESIGN.md's
// Materialize figures, under a cgroup-v1 memory limit with a swap file turned on
// for the run. Backends: swap, file, and no pager at all; next to the raw
// sequential write/read throughput of the scratch disk, measured in the same run.
//
// Usage: npm run bench:pressure -- [--cap-mib 2048] [--threads 1] [--js] [--skip-none] [--compress]
//   --cap-mib   memory.limit_in_bytes of the cgroup; each input chain is this big, so
//               the working set (two chains) is twice the cap
//   --js        also run the same merge through the JS API (needs `npm run build`)
//   --compress  also run the file backend with `compress: 'lz4'` (rows "file, lz4")
// Cleans up (swapoff, swap file, cgroup) on exit, error, Ctrl-C or SIGTERM.

import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : fallback
}
const capMib = Number(flag('cap-mib', '2048'))
const threads = Number(flag('threads', '1'))
const withJs = args.includes('--js')
const skipNone = args.includes('--skip-none')
const withCompress = args.includes('--compress')
const scratchDir = flag('scratch-dir', '/var/tmp')

if (process.getuid?.() !== 0) {
  console.error('bench:pressure needs root: it turns on a swap file and creates a cgroup-v1 memory limit.\n' +
    'Run it as root (sudo npm run bench:pressure); tests never need this.')
  process.exit(2)
}
const memcg = '/sys/fs/cgroup/memory'
if (!fs.existsSync(path.join(memcg, 'memory.limit_in_bytes'))) {
  console.error(`bench:pressure needs the cgroup-v1 memory controller at ${memcg}; it is not mounted here.`)
  process.exit(2)
}

// ---- cleanup, registered before anything is turned on -------------------------
const swapFile = path.join(scratchDir, `coldpage-bench-${process.pid}.swap`)
const cgroup = path.join(memcg, `coldpage-bench-${process.pid}`)
const scratchFiles = []
let swapOn = false
let children = new Set()
function cleanup () {
  for (const child of children) { try { child.kill('SIGKILL') } catch {} }
  if (swapOn) { try { execFileSync('swapoff', [swapFile]); swapOn = false } catch (e) { console.error(`swapoff failed: ${e.message}`) } }
  try { fs.rmSync(swapFile, { force: true }) } catch {}
  for (const f of scratchFiles) { try { fs.rmSync(f, { force: true }) } catch {} }
  if (fs.existsSync(cgroup)) {
    // A cgroup can only be removed once empty: move stragglers to the root first.
    try { for (const pid of fs.readFileSync(path.join(cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) fs.writeFileSync(path.join(memcg, 'cgroup.procs'), pid) } catch {}
    try { fs.rmdirSync(cgroup) } catch (e) { console.error(`rmdir ${cgroup} failed: ${e.message}`) }
  }
}
process.on('exit', cleanup)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { console.error(`\n${sig}: cleaning up`); process.exit(130) })
process.on('uncaughtException', (e) => { console.error(e); process.exit(1) })

// ---- helpers ------------------------------------------------------------------
const GiB = 1024 ** 3
const vmstat = () => Object.fromEntries(fs.readFileSync('/proc/vmstat', 'utf8').trim().split('\n').map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]))
const fmt = (x, d = 2) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d))

function run (cmd, argv, { inCgroup = false } = {}) {
  return new Promise((resolve) => {
    // The child moves itself into the cgroup before exec, so all its memory is charged there.
    const script = inCgroup ? `echo $$ > ${cgroup}/cgroup.procs && exec "$@"` : 'exec "$@"'
    const child = spawn('/bin/sh', ['-c', script, 'sh', cmd, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    children.add(child)
    let out = ''; let err = ''
    child.stdout.on('data', (d) => { out += d })
    child.stderr.on('data', (d) => { err += d })
    child.on('close', (code, signal) => { children.delete(child); resolve({ code, signal, out, err }) })
  })
}

function memcgRead (name) {
  try { return Number(fs.readFileSync(path.join(cgroup, name), 'utf8').trim()) } catch { return NaN }
}

// Raw sequential throughput of the scratch disk: 2 MiB writes then reads of a file
// as big as the working set, cache dropped in between (the same I/O size as the merge).
async function rawDisk (bytes) {
  const file = path.join(scratchDir, `coldpage-bench-${process.pid}.raw`)
  scratchFiles.push(file)
  const count = Math.ceil(bytes / (2 << 20))
  let t = process.hrtime.bigint()
  await run('dd', ['if=/dev/zero', `of=${file}`, 'bs=2M', `count=${count}`, 'conv=fdatasync', 'status=none'])
  const write = (count * (2 << 20)) / GiB / (Number(process.hrtime.bigint() - t) / 1e9)
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
  t = process.hrtime.bigint()
  await run('dd', [`if=${file}`, 'of=/dev/null', 'bs=2M', 'status=none'])
  const read = (count * (2 << 20)) / GiB / (Number(process.hrtime.bigint() - t) / 1e9)
  fs.rmSync(file, { force: true })
  return { write, read }
}

// ---- the run ------------------------------------------------------------------
const mergeBin = path.join(root, 'target/release/examples/merge')
console.log('building the merge example (release)...')
execFileSync('cargo', ['build', '--release', '-p', 'coldpage', '--example', 'merge'], { cwd: root, stdio: 'inherit' })

const workingSet = 2 * capMib * 2 ** 20 * threads
const swapBytes = Math.ceil((workingSet * 1.5) / GiB) * GiB
console.log(`swap file ${swapFile}: ${swapBytes / GiB} GiB`)
execFileSync('fallocate', ['-l', String(swapBytes), swapFile])
fs.chmodSync(swapFile, 0o600)
execFileSync('mkswap', [swapFile], { stdio: 'ignore' })
execFileSync('swapon', [swapFile])
swapOn = true
fs.mkdirSync(cgroup)
fs.writeFileSync(path.join(cgroup, 'memory.limit_in_bytes'), String(capMib * 2 ** 20 * threads))
// Keep swappiness at the system default inside the cgroup; the point is to page.
console.log(`cgroup ${cgroup}: memory.limit_in_bytes = ${capMib * threads} MiB; working set ${workingSet / GiB} GiB`)

console.log('measuring the raw scratch disk...')
const disk = await rawDisk(workingSet)
console.log(`raw disk: write ${fmt(disk.write)} GiB/s, read ${fmt(disk.read)} GiB/s`)

const runs = []
const variants = [
  ['rust', 'swap'], ['rust', 'file'], ...(withCompress ? [['rust', 'file', 'lz4']] : []), ...(skipNone ? [] : [['rust', 'none']]),
  ...(withJs ? [['js', 'swap'], ['js', 'file'], ...(withCompress ? [['js', 'file', 'lz4']] : [])] : []),
]
for (const [lang, backend, compress = 'none'] of variants) {
  fs.writeFileSync(path.join(cgroup, 'memory.max_usage_in_bytes'), '0')
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
  const before = vmstat()
  const t0 = process.hrtime.bigint()
  const argv = ['--backend', backend, '--chain-mib', String(capMib), '--threads', String(threads), '--scratch-dir', scratchDir,
    '--compress', compress]
  const res = lang === 'rust'
    ? await run(mergeBin, argv, { inCgroup: true })
    : await run(process.execPath, ['--expose-gc', path.join(root, 'benches/merge.mjs'), ...argv], { inCgroup: true })
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const after = vmstat()
  const json = res.out.split('\n').find((l) => l.startsWith('JSON: '))
  const m = json ? JSON.parse(json.slice(6)) : {}
  const oom = memcgRead('memory.oom_control') // not a count; use failcnt + signal below
  void oom
  let outcome = 'ok'
  if (res.signal === 'SIGKILL') outcome = 'OOM-killed'
  else if (res.code !== 0) outcome = `failed (exit ${res.code}): ${res.err.trim().split('\n').pop()}`
  const row = {
    variant: `${lang} ${backend}${compress === 'none' ? '' : `, ${compress}`}`,
    outcome,
    gibPerSec: m.gib_per_s,
    wallSec: m.wall_s ?? wall,
    sysSec: m.sys_s,
    userSec: m.user_s,
    majorFaults: m.major_faults,
    minorFaults: m.minor_faults,
    swapIns: after.pswpin - before.pswpin,
    swapOuts: after.pswpout - before.pswpout,
    peakRssMib: m.max_rss_mib,
    cgroupPeakMib: memcgRead('memory.max_usage_in_bytes') / 2 ** 20,
  }
  runs.push(row)
  console.log(`${row.variant}: ${outcome}, ${fmt(row.gibPerSec)} GiB/s, wall ${fmt(row.wallSec, 1)} s, sys ${fmt(row.sysSec, 1)} s, ` +
    `major faults ${row.majorFaults ?? '-'}, swap-ins ${row.swapIns}, cgroup peak ${fmt(row.cgroupPeakMib, 0)} MiB`)
}

// ---- report -------------------------------------------------------------------
const by = (v) => runs.find((r) => r.variant === v)
const file = by('rust file'); const swap = by('rust swap')
const fileVsDisk = file?.gibPerSec / Math.min(disk.read, disk.write)
const fileVsSwap = file?.gibPerSec / swap?.gibPerSec
const lines = [
  `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${fmt(os.totalmem() / GiB, 0)} GiB RAM, kernel ${os.release()}; ` +
    `cap ${capMib * threads} MiB, working set ${workingSet / GiB} GiB (2 MiB chunks), ${threads} thread(s), scratch ${scratchDir}`,
  '',
  '| variant | outcome | GiB/s | wall s | sys s | major faults | swap-ins | cgroup peak MiB |',
  '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...runs.map((r) => `| ${r.variant} | ${r.outcome} | ${fmt(r.gibPerSec)} | ${fmt(r.wallSec, 1)} | ${fmt(r.sysSec, 1)} | ${r.majorFaults ?? '-'} | ${r.swapIns} | ${fmt(r.cgroupPeakMib, 0)} |`),
  `| raw disk (dd 2 MiB, write / read) | ok | ${fmt(disk.write)} / ${fmt(disk.read)} | | | | | |`,
  '',
  `file backend vs raw disk (slower of write/read): ${fmt(fileVsDisk)}× (goal >= 0.80)`,
  `file / swap throughput: ${fmt(fileVsSwap)}× (Materialize measured 3–4× at one thread)`,
  ...(by('rust file, lz4') ? [`file with lz4 / file: ${fmt(by('rust file, lz4').gibPerSec / file?.gibPerSec)}×`] : []),
]
console.log('\n' + lines.join('\n'))
const outDir = path.join(root, 'benches/results')
fs.mkdirSync(outDir, { recursive: true })
fs.writeFileSync(path.join(outDir, 'pressure.json'), JSON.stringify({ capMib, threads, workingSet, disk, runs, fileVsDisk, fileVsSwap }, null, 2))
fs.writeFileSync(path.join(outDir, 'pressure.md'), lines.join('\n') + '\n')
console.log(`\nwrote benches/results/pressure.{json,md}`)
