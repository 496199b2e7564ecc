// The façade's config table (lib/config-fields.ts) and the core's (CONFIG_FIELDS in
// crates/coldpage/src/config.rs) describe the same fields: a field added to one and
// not the other fails here, before any test of its behaviour.
import test from 'ava'

import { FIELDS } from '../lib/config-fields.js'
import native from '../lib/native.js'

test('the façade and the core name the same config fields, in the same order', (t) => {
  t.deepEqual(native.configFieldNames(), Object.keys(FIELDS))
})

test('getConfig from the binding has exactly the core fields', (t) => {
  t.deepEqual(Object.keys(native.getConfig()).sort(), Object.keys(FIELDS).sort())
})
