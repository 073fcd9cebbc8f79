// The data model the snapshot protocol and the metadata layer share: snapshot and peer IDs, limits,
// markers and results with their field checks, and the pure rules over them (status, merges).
// Upstream of src/snapshot and src/metadata; downstream of src/envelope only.
export * from './errors.js'
export * from './ids.js'
export * from './limits.js'
export * from './marker.js'
export * from './result.js'
export * from './state.js'
export { clean, clip } from './fields.js'
export * from './clock.js'
