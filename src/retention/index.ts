export * from './errors.js'
export * from './policy.js'
export * from './prune.js'
export * from './service.js'
