import assert from 'node:assert/strict'
import { ConfigError, parseConfig } from '../../src/config/index.js'

describe('config / audit', () => {
  it('defaults: a head every 300 s, files of 4 MiB, rejected gossip summed per minute', () => {
    const c = parseConfig({}, '/etc/snapmesh/agent.json')
    assert.deepEqual(c.audit, { headSeconds: 300, maxFileBytes: 4 * 1024 * 1024, rejectWindowSeconds: 60 })
  })

  it('takes its keys, and names a wrong one', () => {
    const c = parseConfig({ audit: { headSeconds: 1, maxFileBytes: 4096, rejectWindowSeconds: 5 } }, '/etc/snapmesh/agent.json')
    assert.deepEqual(c.audit, { headSeconds: 1, maxFileBytes: 4096, rejectWindowSeconds: 5 })
    for (const [audit, field] of [[{ headSeconds: 0 }, 'audit.headSeconds'], [{ maxFileBytes: 100 }, 'audit.maxFileBytes'], [{ other: 1 }, 'audit.other']] as const) {
      assert.throws(() => parseConfig({ audit }, '/etc/snapmesh/agent.json'), (err: any) => err instanceof ConfigError && err.field === field)
    }
  })
})
