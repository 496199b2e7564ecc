// A small tour of coldpage: page 256 MiB of "cold" buffers out of the JS heap,
// read a few bytes back, borrow a zero-copy view, take one back whole.
// Run with: npm run demo
import { doctor, getConfig, pageout, pageoutAsync, stats } from 'coldpage'

const MiB = 1 << 20
const mem = () => `rss ${Math.round(process.memoryUsage().rss / MiB)} MiB, external ${Math.round(process.memoryUsage().external / MiB)} MiB`

const report = doctor()
console.log(`coldpage on ${report.platform}: 'auto' picks ${report.auto.backend} (${report.auto.reason})`)
console.log(`scratch dir ${getConfig().scratchDir} on ${report.scratchFs}; zero-copy views: ${report.zeroCopy ? 'yes' : 'no'}`)

// 32 cold 8 MiB blocks, each tagged with its index so reads can be checked.
let blocks = Array.from({ length: 32 }, (_, i) => Buffer.alloc(8 * MiB, i))
console.log(`\n${blocks.length} blocks in the heap: ${mem()}`)

// Odd blocks go to scratch files, even ones to whatever 'auto' picks here.
const handles = await Promise.all(blocks.map((b, i) => pageoutAsync(b, i % 2 ? { backend: 'file' } : {})))
blocks = undefined
for (let i = 0; i < 3; i++) {
  await new Promise((resolve) => setImmediate(resolve))
  globalThis.gc?.()
}
const s = stats()
console.log(`paged out: swap ${s.swap.handles} handles / file ${s.file.handles} handles, ${Math.round(s.scratchBytesOnDisk / MiB)} MiB scratch on disk`)
console.log(`after pageout: ${mem()}`)

// Exactly the bytes asked for.
const probe = handles[7].readAt(5 * MiB, 16)
console.log(`\nhandles[7].readAt(5 MiB, 16) -> ${probe.toString('hex')} (backend ${handles[7].backend})`)
const [a, b] = handles[3].readAtMany([[0, 4], [8 * MiB - 4, 4]])
console.log(`handles[3].readAtMany(first 4, last 4) -> ${a.toString('hex')} ${b.toString('hex')}`)

// A view is a lease: a zero-copy one is detached when its handle goes away.
const leased = process.platform === 'linux' ? pageout(Buffer.alloc(MiB, 0xab), { backend: 'swap' }) : handles[0]
const view = leased.view(0, 8)
console.log(`\nview of a ${leased.backend} handle: ${view.toString('hex')} (length ${view.length})`)
leased.dispose()
console.log(`after dispose the view has length ${view.length}${view.length === 0 ? ': detached, never a dangling pointer' : ' (a copy: zero-copy is off here)'}`)

// take() gives everything back and ends the handle.
const whole = handles[2].take()
console.log(`\ntake() of handles[2]: ${whole.length / MiB} MiB, all ${whole.every((x) => x === 2) ? 'correct' : 'WRONG'}`)

for (const h of handles) h.dispose()
const end = stats()
console.log(`\nall disposed: ${end.swap.handles + end.file.handles} live handles, ${end.scratchBytesOnDisk} scratch bytes on disk`)
console.log(`reads ${end.reads}, bytes read ${end.bytesRead}, checksum failures ${end.checksumFailures}`)
