/**
 * Loading coldpage (any entry point) applies the environment: it is checked in
 * every thread that loads the package, and applied (with the COLDPAGE_CONFIG
 * watch) once per process, by the first: the pager and its config are
 * process-wide.
 */
import { loadEnv } from './config.js'
import native from './native.js'

loadEnv(native.claimEnvironment())
