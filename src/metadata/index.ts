export * from './errors.js'
export * from './record.js'
export * from './dht.js'
export { Catalog } from './catalog.js'
