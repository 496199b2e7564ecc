// The stores the peer benchmark compares, behind one shape: store a chunk,
// read it whole, read a range, read many ranges, take it (read whole and free
// it), release it. Each peer is used the way an app uses it today; where it
// cannot do an op, `notes` says what stands in for it.
import { closeSync, mkdirSync, openSync, readFileSync, readSync, unlinkSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'

import { pageout } from 'coldpage'
import { open as openLmdb } from 'lmdb'

/** A fresh Buffer with `length` bytes of `fd` at `position` (loops over short reads). */
function pread(fd, position, length) {
  const out = Buffer.allocUnsafe(length)
  for (let done = 0; done < length; ) {
    const n = readSync(fd, out, done, length - done, position + done)
    if (n === 0) throw new Error(`unexpected end of file at ${position + done}`)
    done += n
  }
  return out
}

function pwrite(fd, buf, position) {
  for (let done = 0; done < buf.length; ) done += writeSync(fd, buf, done, buf.length - done, position + done)
}

/** coldpage with a fixed backend. */
export function coldpage(backend) {
  return {
    id: `coldpage-${backend}`,
    label: `coldpage ${backend}`,
    notes: {},
    store: (buf) => pageout(buf, { backend }),
    read: (h) => h.readAt(0, h.byteLength),
    readRange: (h, offset, length) => h.readAt(offset, length),
    readRanges: (h, ranges) => h.readAtMany(ranges),
    take: (h) => h.take(),
    release: (h) => h.dispose(),
    close() {},
  }
}

/** node:fs, one temp file per chunk: writeFileSync / readFileSync / unlinkSync. */
export function fsFilePerChunk(dir) {
  const home = join(dir, 'files')
  mkdirSync(home, { mode: 0o700 })
  let seq = 0
  const withFd = (chunk, fn) => {
    const fd = openSync(chunk.path, 'r')
    try {
      return fn(fd)
    } finally {
      closeSync(fd)
    }
  }
  return {
    id: 'fs-files',
    label: 'fs: file per chunk',
    notes: {
      readAt4k: 'open + readSync + close',
      readAtMany: 'open, 1000 readSync, close',
      take: 'readFileSync + unlinkSync',
    },
    store(buf) {
      const path = join(home, `chunk-${seq++}`)
      writeFileSync(path, buf, { mode: 0o600 })
      return { path, length: buf.length }
    },
    read: (chunk) => readFileSync(chunk.path),
    readRange: (chunk, offset, length) => withFd(chunk, (fd) => pread(fd, offset, length)),
    readRanges: (chunk, ranges) => withFd(chunk, (fd) => ranges.map(([o, l]) => pread(fd, o, l))),
    take(chunk) {
      const out = readFileSync(chunk.path)
      unlinkSync(chunk.path)
      return out
    },
    release: (chunk) => unlinkSync(chunk.path),
    close() {},
  }
}

/**
 * node:fs, one spill file on an open fd with positional writeSync/readSync;
 * extents are reused by exact length (the simplest allocator an app writes).
 * node:fs cannot punch holes, so freed space stays allocated on disk.
 */
export function fsOneFd(dir) {
  const fd = openSync(join(dir, 'spill.bin'), 'w+', 0o600)
  const free = new Map()
  let end = 0
  const release = (chunk) => {
    const list = free.get(chunk.length)
    if (list === undefined) free.set(chunk.length, [chunk.position])
    else list.push(chunk.position)
  }
  const read = (chunk) => pread(fd, chunk.position, chunk.length)
  return {
    id: 'fs-fd',
    label: 'fs: one fd, pread',
    notes: {
      readAtMany: '1000 readSync calls',
      take: 'readSync whole + free the extent for reuse',
    },
    store(buf) {
      let position = free.get(buf.length)?.pop()
      if (position === undefined) {
        position = end
        end += Math.ceil(buf.length / 4096) * 4096
      }
      pwrite(fd, buf, position)
      return { position, length: buf.length }
    },
    read,
    readRange: (chunk, offset, length) => pread(fd, chunk.position + offset, length),
    readRanges: (chunk, ranges) => ranges.map(([o, l]) => pread(fd, chunk.position + o, l)),
    take(chunk) {
      const out = read(chunk)
      release(chunk)
      return out
    },
    release,
    close: () => closeSync(fd),
  }
}

/**
 * lmdb-js as a spill store: binary values, no compression, no fsync (spilled
 * bytes need no durability; neither coldpage nor node:fs here syncs).
 */
export function lmdb(dir) {
  const db = openLmdb({
    path: join(dir, 'lmdb'),
    encoding: 'binary',
    compression: false,
    noSync: true,
    noMemInit: true,
    overlappingSync: false,
  })
  let seq = 0
  return {
    id: 'lmdb',
    label: 'lmdb-js',
    notes: {
      readAt4k: 'getBinaryFast + copy of the range (no range reads)',
      readAtMany: 'one getBinaryFast + 1000 copies',
      take: 'getBinary + removeSync',
    },
    store(buf) {
      const key = seq++
      db.putSync(key, buf)
      return { key, length: buf.length }
    },
    read: (chunk) => db.getBinary(chunk.key),
    readRange: (chunk, offset, length) => Buffer.from(db.getBinaryFast(chunk.key).subarray(offset, offset + length)),
    readRanges(chunk, ranges) {
      const value = db.getBinaryFast(chunk.key)
      return ranges.map(([o, l]) => Buffer.from(value.subarray(o, o + l)))
    },
    take(chunk) {
      const out = db.getBinary(chunk.key)
      db.removeSync(chunk.key)
      return out
    },
    release: (chunk) => db.removeSync(chunk.key),
    close: () => db.close(),
  }
}

/** The in-heap limit: the bytes stay in a Buffer; every read is a copy. */
export function heap() {
  return {
    id: 'heap',
    label: 'in-heap copy',
    notes: {
      pageout: 'Buffer.from (a copy, nothing leaves RAM)',
      roundtrip: 'Buffer.from (one copy)',
    },
    skip: { take: 'not measured: the bytes never left the heap, there is nothing to take' },
    store: (buf) => Buffer.from(buf),
    read: (b) => Buffer.from(b),
    readRange: (b, offset, length) => Buffer.from(b.subarray(offset, offset + length)),
    readRanges: (b, ranges) => ranges.map(([o, l]) => Buffer.from(b.subarray(o, o + l))),
    take: (b) => b, // the round trip: store (a copy), then hand the copy back
    release() {},
    close() {},
  }
}
