import assert from 'node:assert/strict'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import PQueue from 'p-queue'
import { Catalog, FORGET_TOPIC, decodeForgetNotice, recordFromState, signForgetNotice } from '../../src/metadata/index.js'
import { InvalidRetentionRequestError, RetentionService } from '../../src/retention/index.js'
import { applyResult, newState, signResult } from '../../src/snapshot/index.js'
import { AgentState, replicatedKey, takenOverKey } from '../../src/state/index.js'
import { FsBlockStore, RAW, cidForBytes } from '../../src/store/index.js'
import { marker, okBody, peers, type Peer } from '../snapshot/fixtures.js'

describe('retention / service: forgetting on a running agent', () => {
  let a: Peer
  let b: Peer
  let dir: string
  let catalog: Catalog
  let state: AgentState
  let running: Set<string>
  let sent: Array<{ topic: string, bytes: Uint8Array }>
  let unpublished: string[]
  let heads: number
  let service: RetentionService

  before(async () => { [a, b] = await peers(2) })
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapmesh-retention-'))
    catalog = new Catalog({ path: path.join(dir, 'catalog'), clock: () => 2000 })
    state = new AgentState({ path: path.join(dir, 'state') })
    await catalog.start()
    await state.start()
    running = new Set()
    sent = []
    unpublished = []
    heads = 0
    service = new RetentionService({
      privateKey: a.key,
      mesh: { peerId: a.id, publish: async (topic, bytes) => { sent.push({ topic, bytes }) } },
      catalog,
      state,
      blocks: { cids: async function * () {}, info: async () => undefined, delete: async () => {} },
      isRunning: (id) => running.has(id),
      published: { forgetPublished: (id) => { unpublished.push(id) }, publishHead: async () => { heads++ } },
      getterFor: async () => { throw new Error('no manifest is read in these tests') },
      serial: new PQueue({ concurrency: 1 }),
      clock: () => 3000
    }, { pruneGraceMs: 3600_000 })
    await service.start()
  })
  afterEach(async () => {
    await service.stop()
    await state.stop()
    await catalog.stop()
    await fs.rm(dir, { recursive: true, force: true })
  })

  async function stored (lamport: number): Promise<string> {
    const m = marker(a.id, [a.id], { lamport })
    await catalog.put(recordFromState(applyResult(newState(m), await signResult(a.key, okBody(m, a))), 2000))
    return m.id
  }

  it('a forget notice deletes the snapshot\'s agent state with its record, and leaves the others\'', async () => {
    const one = await stored(1)
    const two = await stored(2)
    await state.set(replicatedKey(one), '{"members":[]}')
    await state.set(takenOverKey(one, b.id), '[]')
    await state.set(replicatedKey(two), '{"members":[]}')
    const notice = await signForgetNotice(b.key, { id: one, by: b.id, time: 2500, prune: false })
    assert.equal(await service.applyForget(notice), true)
    assert.equal(await catalog.get(one), undefined)
    assert.equal(await state.get(replicatedKey(one)), undefined)
    assert.equal(await state.get(takenOverKey(one, b.id)), undefined)
    // the other snapshot and its state are untouched
    assert.equal((await catalog.get(two))?.id, two)
    assert.equal(await state.get(replicatedKey(two)), '{"members":[]}')
    assert.deepEqual(unpublished, [one])
    assert.equal(heads, 1)
    // the same notice again changes nothing
    assert.equal(await service.applyForget(notice), false)
    assert.deepEqual(unpublished, [one])
  })

  it('a notice for a snapshot still running here is not applied; once it has ended, it is', async () => {
    const id = await stored(3)
    await state.set(replicatedKey(id), '{"members":[]}')
    running.add(id)
    const notice = await signForgetNotice(b.key, { id, by: b.id, time: 2500, prune: false })
    assert.equal(await service.applyForget(notice), false)
    assert.equal((await catalog.get(id))?.id, id)
    assert.equal(await state.get(replicatedKey(id)), '{"members":[]}')
    running.delete(id)
    assert.equal(await service.applyForget(notice), true)
    assert.equal(await state.get(replicatedKey(id)), undefined)
  })

  it('forget by ID signs a notice as this agent and gossips it; bad requests are refused naming why', async () => {
    const id = await stored(4)
    await state.set(replicatedKey(id), '{"members":[]}')
    const out = await service.forget({ snapshots: [id.slice(0, 10)] })
    assert.deepEqual(out.forgotten.map(r => r.id), [id])
    assert.equal(sent.length, 1)
    assert.equal(sent[0].topic, FORGET_TOPIC)
    const notice = await decodeForgetNotice(sent[0].bytes)
    assert.equal(notice.id, id)
    assert.equal(notice.by, a.id)
    assert.equal(await state.get(replicatedKey(id)), undefined)
    await assert.rejects(service.forget({}), (err: Error) => err instanceof InvalidRetentionRequestError && /nothing to forget/.test(err.message))
    await assert.rejects(service.forget({ snapshots: [id], keep: { last: 1 } }), /not both/)
    await assert.rejects(service.forget({ keep: {} }), InvalidRetentionRequestError)
  })

  it('sweeps on its own the blocks no record references once they are older than the grace period', async () => {
    const store = new FsBlockStore({ path: path.join(dir, 'store') })
    await store.start()
    const old = cidForBytes(new TextEncoder().encode('an orphan block from long ago'), RAW)
    const young = cidForBytes(new TextEncoder().encode('an orphan block written just now'), RAW)
    await store.put(old, new TextEncoder().encode('an orphan block from long ago'))
    await store.put(young, new TextEncoder().encode('an orphan block written just now'))
    const file = path.join(dir, 'store', 'blocks', old.toString().slice(-3, -1), old.toString())
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000)
    await fs.utimes(file, twoHoursAgo, twoHoursAgo)
    const make = (sweepMs: number): RetentionService => new RetentionService({
      privateKey: a.key,
      mesh: { peerId: a.id, publish: async () => {} },
      catalog,
      state,
      blocks: store,
      isRunning: () => false,
      published: { forgetPublished: () => {}, publishHead: async () => {} },
      getterFor: async () => store,
      serial: new PQueue({ concurrency: 1 })
    }, { pruneGraceMs: 3600_000, sweepMs })
    // with no sweep configured nothing goes; with one, the old orphan goes and the young one stays
    const idle = make(0)
    await idle.start()
    await new Promise(resolve => setTimeout(resolve, 400))
    assert.equal(await store.has(old), true)
    await idle.stop()
    const sweeping = make(100)
    await sweeping.start()
    try {
      await waitUntil(async () => !(await store.has(old)), 10_000)
      assert.equal(await store.has(young), true, 'a block younger than the grace period was swept')
    } finally {
      await sweeping.stop()
      await store.stop()
    }
  })
})

async function waitUntil (fn: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
